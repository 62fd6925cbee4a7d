/// Function symbols sorted by address, looked up by binary search.
public struct SymbolTable: Sendable {
    public struct Symbol: Sendable {
        public var start: UInt64
        public var end: UInt64
        public var name: String
    }

    public private(set) var symbols: [Symbol]

    /// Sorts the symbols and gives zero-sized ones (common in assembly and in
    /// kallsyms) the room up to the next symbol.
    public init(_ unsorted: [Symbol]) {
        var sorted = unsorted.sorted { ($0.start, $1.end) < ($1.start, $0.end) }
        // Drop exact duplicates (aliases at one address: keep the first, longest).
        var unique: [Symbol] = []
        unique.reserveCapacity(sorted.count)
        for symbol in sorted where unique.last?.start != symbol.start { unique.append(symbol) }
        sorted = unique
        for i in sorted.indices where sorted[i].end <= sorted[i].start {
            sorted[i].end = i + 1 < sorted.count ? sorted[i + 1].start : sorted[i].start + 4096
        }
        symbols = sorted
    }

    public func lookup(_ address: UInt64) -> Symbol? {
        var low = 0
        var high = symbols.count
        while low < high {
            let mid = (low + high) / 2
            if symbols[mid].start <= address { low = mid + 1 } else { high = mid }
        }
        // `low - 1` is the last symbol starting at or before the address; an
        // enclosing larger symbol may start earlier (nested aliases), so look back a little.
        var i = low - 1
        var steps = 0
        while i >= 0 && steps < 8 {
            if symbols[i].start <= address && address < symbols[i].end { return symbols[i] }
            i -= 1
            steps += 1
        }
        return nil
    }

    public var isEmpty: Bool { symbols.isEmpty }
}
