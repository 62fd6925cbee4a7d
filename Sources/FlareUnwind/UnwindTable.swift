import FlareSymbols

/// One ELF file's call-frame information, compiled into compact rows: for
/// each address range, how to find the canonical frame address (CFA) and
/// where the return address and the caller's frame pointer were saved.
///
/// This is the idea behind the OpenTelemetry eBPF profiler's "stack deltas"
/// and Bastian, Kell and Zappa Nardelli's precompiled unwind tables: interpret
/// the DWARF CFI program once, not once per sample. Each function (FDE) is
/// compiled the first time a sample lands in it: a host's processes run a
/// small part of the code they map, and a large server binary's whole table
/// would be megabytes of rows never read. Not thread-safe.
public final class UnwindTable {
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

    /// FDE start addresses (link-time virtual addresses) as offsets from
    /// `base`, ascending: four bytes each, as no ELF's text spans 4 GiB.
    private let fdeOffsets: [UInt32]
    private let base: UInt64
    private let segments: [ElfImage.Segment]
    /// Where rows come from: the file's CFI, kept open; nil when the file has none.
    private let compiler: UnwindTableCompiler.FunctionCompiler?

    // The rows of the functions compiled so far, in one arena: a function's
    // rows are contiguous, starting at its FDE's start.
    private var rowOffsets: [UInt32] = []
    private var rows: [Row] = []
    /// FDE index → its first row in the arena (high 32 bits) and row count (low 32).
    private var compiledFunctions: [Int32: UInt64] = [:]

    init(fdeStarts: [UInt64], segments: [ElfImage.Segment], compiler: UnwindTableCompiler.FunctionCompiler?) {
        let base = fdeStarts.first ?? 0
        // FDEs beyond 4 GiB of the first (never seen in practice) are dropped rather than misread.
        self.base = base
        self.fdeOffsets = fdeStarts.prefix { $0 - base <= UInt64(UInt32.max) }.map { UInt32($0 - base) }
        self.segments = segments
        self.compiler = compiler
    }

    /// The row that applies at link-time virtual address `address`.
    public func row(at address: UInt64) -> Row { rowAndRange(at: address).row }

    /// The row at `address` and the address range it covers, so that a caller
    /// can skip the search for the next address in the same range (a
    /// recursion returns to one address again and again). Compiles the
    /// function's rows on first use.
    func rowAndRange(at address: UInt64) -> (row: Row, start: UInt64, end: UInt64) {
        guard address >= base, address - base <= UInt64(UInt32.max) else { return (.none, address, address &+ 1) }
        let offset = UInt32(address - base)
        let next = Self.upperBound(fdeOffsets[...], offset)
        guard next > 0 else { return (.none, address, fdeOffsets.first.map { base + UInt64($0) } ?? address &+ 1) }
        let functionEnd = next < fdeOffsets.count ? base + UInt64(fdeOffsets[next]) : UInt64.max
        let (first, count) = rowsOfFunction(next - 1)
        let row = Self.upperBound(rowOffsets[first..<first + count], offset)
        let end = row < first + count ? base + UInt64(rowOffsets[row]) : functionEnd
        guard row > first else { return (.none, address, end) }
        return (rows[row - 1], base + UInt64(rowOffsets[row - 1]), end)
    }

    /// The first index in `values` whose value is greater than `value`.
    private static func upperBound(_ values: ArraySlice<UInt32>, _ value: UInt32) -> Int {
        var low = values.startIndex
        var high = values.endIndex
        values.withUnsafeBufferPointer { buffer in
            let start = values.startIndex
            while low < high {
                let mid = (low + high) / 2
                if buffer[mid - start] <= value { low = mid + 1 } else { high = mid }
            }
        }
        return low
    }

    private func rowsOfFunction(_ index: Int) -> (first: Int, count: Int) {
        if let known = compiledFunctions[Int32(index)] { return (Int(known >> 32), Int(known & 0xffff_ffff)) }
        let first = rows.count
        let start = base + UInt64(fdeOffsets[index])
        let end = index + 1 < fdeOffsets.count ? base + UInt64(fdeOffsets[index + 1]) : UInt64.max
        let compiled = compiler?.rows(from: start, to: end) ?? []
        for (address, row) in compiled where address - base <= UInt64(UInt32.max) {
            rowOffsets.append(UInt32(address - base))
            rows.append(row)
        }
        if rows.count == first {
            rowOffsets.append(fdeOffsets[index])
            rows.append(.none)
        }
        compiledFunctions[Int32(index)] = UInt64(first) << 32 | UInt64(rows.count - first)
        return (first, rows.count - first)
    }

    /// Compiles every function now (to report a whole file's table).
    public func compileAll() {
        for index in fdeOffsets.indices { _ = rowsOfFunction(index) }
    }

    /// Drops the resident pages of the file the rows are compiled from.
    public func releasePages() { compiler?.releasePages() }

    /// The link-time virtual address of a file offset.
    public func virtualAddress(fileOffset: UInt64) -> UInt64 { segments.virtualAddress(fileOffset: fileOffset) }

    public var functionCount: Int { fdeOffsets.count }
    /// Rows compiled so far.
    public var rowCount: Int { rows.count }
    public var rowKinds: [Kind] { rows.map(\.kind) }
    /// Bytes the function index and the compiled rows occupy.
    public var memoryBytes: Int {
        fdeOffsets.count * MemoryLayout<UInt32>.stride + rows.count * (MemoryLayout<UInt32>.stride + MemoryLayout<Row>.stride)
            + compiledFunctions.count * 16
    }
    public var isEmpty: Bool { fdeOffsets.isEmpty }
}
