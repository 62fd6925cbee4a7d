/// One ELF file's call-frame information, compiled once into compact rows:
/// for each address range, how to find the canonical frame address (CFA) and
/// where the return address and the caller's frame pointer were saved.
///
/// This is the idea behind the OpenTelemetry eBPF profiler's "stack deltas"
/// and Bastian, Kell and Zappa Nardelli's precompiled unwind tables: interpret
/// the DWARF CFI program once per file, not once per sample.
public struct UnwindTable: Sendable {
    public enum Kind: UInt8, Sendable {
        /// No CFI covers this address.
        case none
        /// CFA = SP + offset.
        case cfaSP
        /// CFA = BP + offset.
        case cfaBP
        /// A PLT stub: CFA = SP + 8, plus 8 once the stub has pushed its argument.
        case plt
        /// The outermost frame: the return address is undefined (`_start`, thread entry).
        case outermost
        /// A rule the compact form cannot express (DWARF expressions, signal frames).
        case unsupported
    }

    /// Eight bytes: fields ordered so that nothing is padded.
    public struct Row: Sendable, Equatable {
        public var kind: Kind
        /// Where the return address is saved, relative to the CFA.
        public var raOffset: Int8
        /// Where the caller's BP is saved, relative to the CFA; `unchangedBP` if not saved.
        public var bpOffset: Int16
        public var cfaOffset: Int32

        public init(kind: Kind, cfaOffset: Int32, raOffset: Int8, bpOffset: Int16) {
            self.kind = kind; self.raOffset = raOffset; self.bpOffset = bpOffset; self.cfaOffset = cfaOffset
        }

        public static let unchangedBP = Int16.min
        static let none = Row(kind: .none, cfaOffset: 0, raOffset: 0, bpOffset: unchangedBP)
    }

    public struct Segment: Sendable {
        var fileOffset: UInt64
        var virtualAddress: UInt64
        var fileSize: UInt64
    }

    /// Row start addresses as offsets from `base` (link-time virtual
    /// addresses), ascending: four bytes each, as no ELF's text spans 4 GiB.
    let offsets: [UInt32]
    let base: UInt64
    let rows: [Row]
    let segments: [Segment]

    init(addresses: [UInt64], rows: [Row], segments: [Segment]) {
        let base = addresses.first ?? 0
        // Rows beyond 4 GiB of the first (never seen in practice) are dropped rather than misread.
        let kept = addresses.prefix { $0 - base <= UInt64(UInt32.max) }.count
        self.base = base
        self.offsets = addresses.prefix(kept).map { UInt32($0 - base) }
        self.rows = Array(rows.prefix(kept))
        self.segments = segments
    }

    /// The row that applies at link-time virtual address `address`.
    public func row(at address: UInt64) -> Row { rowAndRange(at: address).row }

    /// The row at `address` and the address range it covers, so that a caller
    /// can skip the search for the next address in the same range (a
    /// recursion returns to one address again and again).
    func rowAndRange(at address: UInt64) -> (row: Row, start: UInt64, end: UInt64) {
        guard address >= base, address - base <= UInt64(UInt32.max) else { return (.none, address, address &+ 1) }
        let offset = UInt32(address - base)
        var low = 0
        var high = offsets.count
        offsets.withUnsafeBufferPointer { offsets in
            while low < high {
                let mid = (low + high) / 2
                if offsets[mid] <= offset { low = mid + 1 } else { high = mid }
            }
        }
        let end = low < offsets.count ? base + UInt64(offsets[low]) : UInt64.max
        guard low > 0 else { return (.none, address, end) }
        return (rows[low - 1], base + UInt64(offsets[low - 1]), end)
    }

    /// The link-time virtual address of a file offset.
    public func virtualAddress(fileOffset: UInt64) -> UInt64 {
        for segment in segments where fileOffset >= segment.fileOffset && fileOffset < segment.fileOffset + max(segment.fileSize, 1) {
            return fileOffset - segment.fileOffset + segment.virtualAddress
        }
        return fileOffset
    }

    public var rowCount: Int { rows.count }
    public var rowKinds: [Kind] { rows.map(\.kind) }
    /// Bytes the compiled rows occupy.
    public var memoryBytes: Int { offsets.count * MemoryLayout<UInt32>.stride + rows.count * MemoryLayout<Row>.stride }
    public var isEmpty: Bool { rows.isEmpty }
}
