import FlareUnwind
import Foundation
import Testing

@Suite("compiled unwind tables")
struct UnwindTableTests {
    static let libc = "/lib/x86_64-linux-gnu/libc.so.6"

    @Test func compilesLibcIntoRows() throws {
        let started = Date()
        let table = try UnwindTableCompiler.compile(path: Self.libc)
        let elapsed = Date().timeIntervalSince(started)
        print("libc: \(table.rowCount) rows, \(table.memoryBytes) bytes, compiled in \(Int(elapsed * 1000)) ms")
        #expect(table.rowCount > 1000)
        var kinds: [UnwindTable.Kind: Int] = [:]
        // Sample the table: most addresses in libc's text are covered by simple rows.
        for address in stride(from: UInt64(0x28000), to: 0x150000, by: 97) { kinds[table.row(at: address).kind, default: 0] += 1 }
        print(kinds)
        #expect((kinds[.cfaSP] ?? 0) > (kinds[.unsupported] ?? 0) * 10)
    }
}
