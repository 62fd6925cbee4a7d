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

    public struct Row: Sendable, Equatable {
        public var kind: Kind
        public var cfaOffset: Int32
        /// Where the return address is saved, relative to the CFA.
        public var raOffset: Int16
        /// Where the caller's BP is saved, relative to the CFA; `unchangedBP` if not saved.
        public var bpOffset: Int16

        public static let unchangedBP = Int16.min
        static let none = Row(kind: .none, cfaOffset: 0, raOffset: 0, bpOffset: unchangedBP)
    }

    public struct Segment: Sendable {
        var fileOffset: UInt64
        var virtualAddress: UInt64
        var fileSize: UInt64
    }

    /// Row start addresses (link-time virtual addresses), ascending.
    let addresses: [UInt64]
    let rows: [Row]
    let segments: [Segment]

    init(addresses: [UInt64], rows: [Row], segments: [Segment]) {
        self.addresses = addresses
        self.rows = rows
        self.segments = segments
    }

    /// The row that applies at link-time virtual address `address`.
    public func row(at address: UInt64) -> Row {
        var low = 0
        var high = addresses.count
        while low < high {
            let mid = (low + high) / 2
            if addresses[mid] <= address { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? .none : rows[low - 1]
    }

    /// The link-time virtual address of a file offset.
    public func virtualAddress(fileOffset: UInt64) -> UInt64 {
        for segment in segments where fileOffset >= segment.fileOffset && fileOffset < segment.fileOffset + max(segment.fileSize, 1) {
            return fileOffset - segment.fileOffset + segment.virtualAddress
        }
        return fileOffset
    }

    public var rowCount: Int { rows.count }
    /// Bytes the compiled rows occupy.
    public var memoryBytes: Int { addresses.count * MemoryLayout<UInt64>.stride + rows.count * MemoryLayout<Row>.stride }
    public var isEmpty: Bool { rows.isEmpty }
}
