import FlareSampler
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

extension UnwindTableTests {
    /// lld puts `.eh_frame_hdr` after `.eh_frame` (every Swift binary, this
    /// test's own included); looking up a function near the end of such a
    /// file must use the header's search table rather than read and keep
    /// every FDE before it (libdw's section-header path: megabytes of heap).
    @Test func lastFunctionsOfASwiftBinaryAreCompiledWithoutReadingTheRest() throws {
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let sections = try TestSupport.run("/usr/bin/readelf", ["-SW", path]).stdout
        guard let frames = sections.range(of: " .eh_frame "), let header = sections.range(of: " .eh_frame_hdr "),
              frames.lowerBound < header.lowerBound else {
            print("SKIP lastFunctionsOfASwiftBinary…: \(path) does not have .eh_frame before .eh_frame_hdr")
            return
        }
        // The last three functions of the text, by address.
        let functions = try TestSupport.run("/usr/bin/nm", ["-n", "--defined-only", path]).stdout.split(separator: "\n").compactMap { line -> UInt64? in
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[1] == "T" || fields[1] == "t", !fields[2].hasPrefix("_fini") else { return nil }
            return UInt64(fields[0], radix: 16)
        }
        #expect(functions.count > 1000)
        // The least growth of three lookups, each in a fresh table, so that
        // other tests allocating at the same moment cannot fail a good lookup.
        var growth = Int.max
        for address in functions.suffix(3) {
            let table = try UnwindTableCompiler.open(path: path)
            let before = Linux.heapBytesInUse()
            let row = table.row(at: address)
            growth = min(growth, Linux.heapBytesInUse() - before)
            #expect(row.kind == .cfaSP, "rule at \(String(address, radix: 16)): \(row)")
        }
        print("heap grown by one lookup near the end of \(path): \(growth) bytes")
        #expect(growth < 1 << 20)
    }
}
