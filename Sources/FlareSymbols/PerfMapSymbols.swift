/// Names for JIT-compiled code from `/tmp/perf-PID.map`, the file that JITs
/// (V8, the JVM with perf-map-agent, LuaJIT, .NET, …) write for perf:
/// one `START SIZE name` line per function, addresses in hex.
struct PerfMapSymbols {
    let table: SymbolTable

    init?(text: String) {
        var builder = SymbolTable.Builder()
        var count = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 2)
            guard parts.count == 3, let start = UInt64(parts[0].hasPrefix("0x") ? parts[0].dropFirst(2) : parts[0], radix: 16),
                  let size = UInt64(parts[1].hasPrefix("0x") ? parts[1].dropFirst(2) : parts[1], radix: 16) else { continue }
            builder.add(start: start, size: max(size, 1), name: String(parts[2]))
            count += 1
        }
        guard count > 0 else { return nil }
        table = SymbolTable(builder)
    }
}
