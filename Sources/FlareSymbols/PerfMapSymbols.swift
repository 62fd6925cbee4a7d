import Glibc

/// Names for JIT-compiled code from `/tmp/perf-PID.map`, the file that JITs
/// (V8, the JVM with perf-map-agent, LuaJIT, .NET, …) write for perf:
/// one `START SIZE name` line per function, addresses in hex.
struct PerfMapSymbols {
    let table: SymbolTable

    /// Lines longer than this are skipped unread: no function name is that
    /// long, and a hostile map may be one line of a gigabyte.
    static let maxLineBytes = 64 << 10

    init?(text: String) {
        self.init(bytes: Array(text.utf8))
    }

    /// Splits on bytes, so a map of any size costs one pass and only its
    /// short lines become strings.
    init?(bytes: [UInt8]) {
        var builder = SymbolTable.Builder()
        var count = 0
        bytes.withUnsafeBufferPointer { all in
            guard let base = all.baseAddress else { return }
            var start = 0
            while start < all.count {
                // memchr: a 1 GB map of one endless line is skipped at memory speed.
                let newline = memchr(base + start, Int32(UInt8(ascii: "\n")), all.count - start)
                let end = newline.map { $0.assumingMemoryBound(to: UInt8.self) - UnsafeMutablePointer(mutating: base) } ?? all.count
                if end > start, end - start <= Self.maxLineBytes,
                   let (address, size, name) = Self.entry(String(decoding: UnsafeBufferPointer(rebasing: all[start..<end]), as: UTF8.self)) {
                    builder.add(start: address, size: max(size, 1), name: name)
                    count += 1
                }
                start = end + 1
            }
        }
        guard count > 0 else { return nil }
        table = SymbolTable(builder)
    }

    private static func entry(_ line: String) -> (UInt64, UInt64, String)? {
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count == 3, let start = UInt64(parts[0].hasPrefix("0x") ? parts[0].dropFirst(2) : parts[0], radix: 16),
              let size = UInt64(parts[1].hasPrefix("0x") ? parts[1].dropFirst(2) : parts[1], radix: 16) else { return nil }
        return (start, size, String(parts[2]))
    }
}
