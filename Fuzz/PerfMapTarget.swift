// PerfMapSymbols.swift is compiled into this module (Fuzz/PerfMapSymbols.swift
// links to it): the parser is internal to FlareSymbols and names its types unqualified.
@_exported import FlareSymbols

/// JIT perf maps (`/tmp/perf-PID.map`, written by whoever runs the JIT): one
/// `START SIZE name` line per function, then the symbol table built from them
/// and the demangler on the names it answers with. Every line the parser
/// accepts must be found again at its start address.
enum PerfMapTarget: FuzzTarget {
    static let name = "perf-map"

    static func run(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        guard let symbols = PerfMapSymbols(text: text) else { return }
        for (start, size) in entries(text).prefix(32) {
            for address in [start, start &+ size &- 1, start &+ size] {
                if let name = symbols.table.lookup(address) { _ = Demangler.demangle(name) }
            }
            FuzzCheck.require(symbols.table.lookup(start) != nil, "no symbol at \(String(start, radix: 16)), where a line of the map starts one")
        }
        _ = symbols.table.lookup(0)
        _ = symbols.table.lookup(UInt64.max)
    }

    /// The lines' start and size, read as `PerfMapSymbols` reads them.
    private static func entries(_ text: String) -> [(UInt64, UInt64)] {
        func hex(_ field: Substring) -> UInt64? { UInt64(field.hasPrefix("0x") ? field.dropFirst(2) : field, radix: 16) }
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 2)
            guard parts.count == 3, let start = hex(parts[0]), let size = hex(parts[1]) else { return nil }
            return (start, size)
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    PerfMapTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
