import FlareProcesses
import FlareProfile
import FlareRecorder
import FlareSampler
import FlareSymbols
import FlareUnwind
import Foundation
import Testing

/// What the agent keeps between windows. Its symbol and unwind caches share
/// one budget and drop the files used longest ago first (a dropped file is
/// opened again on its next use); JIT perf maps are read again once they grew.
@Suite("agent caches")
struct AgentCacheTests {
    static let libc = "/lib/x86_64-linux-gnu/libc.so.6"
    static let libdw = "/lib/x86_64-linux-gnu/libdw.so.1"

    /// The file offset of a dynamic symbol of `image`, from `nm -D`.
    static func fileOffset(of symbol: String, in image: ElfImage) throws -> UInt64 {
        let listing = try TestSupport.run("/usr/bin/nm", ["-D", "--defined-only", image.path]).stdout
        let line = try #require(listing.split(separator: "\n").first { $0.hasSuffix(" " + symbol) || $0.contains(" \(symbol)@@") })
        let address = try #require(UInt64(line.prefix { $0 != " " }, radix: 16))
        let segment = try #require(image.segments.first { address >= $0.virtualAddress && address < $0.virtualAddress + $0.fileSize })
        return address - segment.virtualAddress + segment.fileOffset
    }

    @Test func theSymbolizerDropsTheFileUsedLongestAgoAndOpensItAgainOnItsNextUse() throws {
        let symbolizer = Symbolizer()
        symbolizer.clock = 1
        let libc = try #require(symbolizer.image(identity: "f:libc", candidates: [Self.libc]))
        let qsort = try Self.fileOffset(of: "qsort", in: libc)
        let named = try #require(symbolizer.function(in: libc, fileOffset: qsort))
        symbolizer.clock = 2
        let libdw = try #require(symbolizer.image(identity: "f:libdw", candidates: [Self.libdw]))
        let begin = try Self.fileOffset(of: "dwfl_begin", in: libdw)
        #expect(symbolizer.frames(in: libdw, fileOffset: begin)?.last?.function == "dwfl_begin")

        let files = symbolizer.cachedFiles
        #expect(files.count == 2 && files.allSatisfy { $0.bytes > 0 }, "\(files)")
        // Freeing a single byte takes the file used longest ago, and only it.
        let dropped = files.leastRecentlyUsed(freeing: 1)
        #expect(dropped.map(\.lastUse) == [1])
        let before = symbolizer.memoryBytes
        symbolizer.evict(Set(dropped.map(\.key)))
        #expect(symbolizer.cachedFiles.map(\.lastUse) == [2])
        #expect(symbolizer.memoryBytes <= before - dropped[0].bytes)

        symbolizer.clock = 3
        let reopened = try #require(symbolizer.image(identity: "f:libc", candidates: [Self.libc]))
        #expect(reopened !== libc)
        #expect(symbolizer.function(in: reopened, fileOffset: qsort) == named)
        #expect(Set(symbolizer.cachedFiles.map(\.lastUse)) == [2, 3])
    }

    @Test func unwindTablesDropTheFileUsedLongestAgoAndCompileItAgainOnItsNextUse() throws {
        let me = ProcessTable().process(getpid())
        let cache = UnwindTableCache()
        // Two functions this process has mapped, in two files.
        var used: [(mapping: MappedFile, address: UInt64, table: UnwindTable)] = []
        for (clock, symbol) in [(1, "qsort"), (2, "dwfl_begin")] {
            cache.clock = clock
            let runtime = UInt64(UInt(bitPattern: try #require(dlsym(nil, symbol))))
            let mapping = try #require(me.mapping(containing: runtime))
            let table = try #require(cache.table(for: mapping, pid: getpid()))
            let address = table.virtualAddress(fileOffset: mapping.fileOffset(of: runtime))
            #expect(table.row(at: address).kind != .unsupported, "\(symbol)")
            used.append((mapping, address, table))
        }
        let files = cache.cachedFiles
        #expect(files.count == 2 && files.allSatisfy { $0.bytes > 0 }, "\(files)")
        let dropped = files.leastRecentlyUsed(freeing: 1)
        #expect(dropped.map(\.key) == [used[0].mapping.identity])
        cache.evict(Set(dropped.map(\.key)))
        #expect(cache.cachedFiles.map(\.key) == [used[1].mapping.identity])

        cache.clock = 3
        let again = try #require(cache.table(for: used[0].mapping, pid: getpid()))
        #expect(again !== used[0].table)
        #expect(again.row(at: used[0].address) == used[0].table.row(at: used[0].address))
    }

    /// Descriptors of this process open on `path`.
    static func openDescriptors(to path: String) -> Int {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return descriptors.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == path }.count
    }

    /// Whole-machine sampling with a budget too small for any file: every
    /// window drops (and closes) every cached file, and the next window still
    /// names its frames.
    @Test func theProfilerStillNamesEveryWindowWhenItsCachesAreEvictedEachTime() throws {
        let binaries = try ["lru_first", "lru_second"].map { try TestSupport.compileC("agent_burn.c", output: $0) }
        var options = ContinuousOptions()
        options.cacheBytes = 1
        options.spanLabels = false
        options.includes = { $0.name.hasPrefix("lru_") }
        let profiler: ContinuousProfiler
        do {
            profiler = try ContinuousProfiler(options: options)
        } catch {
            print("SKIPPED cache eviction under sampling: whole-machine perf_event is not available: \(error)")
            return
        }
        defer { profiler.stop() }
        var evictionsBefore = 0
        // Windows alternate between the two programs, so each meets a file dropped before.
        for binary in binaries + binaries {
            let start = Int64(Date().timeIntervalSince1970 * 1e9)
            let workload = Process()
            workload.executableURL = URL(fileURLWithPath: binary)
            workload.arguments = ["1.5"]
            try workload.run()
            while workload.isRunning {
                usleep(50_000)
                profiler.drain()
            }
            profiler.drain()
            let windows = profiler.cutWindow(start: start, end: Int64(Date().timeIntervalSince1970 * 1e9), hostName: "test")
            let name = URL(fileURLWithPath: binary).lastPathComponent
            let window = try #require(windows.first { $0.service == name }, "services: \(windows.map(\.service))")
            let top = FunctionTotals(window.profile).topBySelf(1).first?.function
            #expect(top == "burn_here", "\(name): top function \(top ?? "none") of \(window.samples) samples")
            let evictions = profiler.statistics.cacheEvictions
            #expect(evictions > evictionsBefore, "no file was dropped after the \(name) window")
            evictionsBefore = evictions
            #expect(Self.openDescriptors(to: binary) == 0, "\(name) is still open after its files were dropped")
        }
    }

    @Test func aJITMapThatGrewIsReadAgainForTheNextWindow() throws {
        // A live process: its perf map is checked against its user, known only while it runs.
        let owner = Process()
        owner.executableURL = URL(fileURLWithPath: "/bin/sleep")
        owner.arguments = ["60"]
        try owner.run()
        defer { kill(owner.processIdentifier, SIGKILL); owner.waitUntilExit() }
        let pid = owner.processIdentifier
        let path = "/tmp/perf-\(pid).map"
        defer { unlink(path) }
        try "7f0000001000 100 jit_first\n".write(toFile: path, atomically: false, encoding: .utf8)
        let symbolizer = Symbolizer()
        #expect(symbolizer.jitFunction(pid: pid, address: 0x7f00_0000_1010) == "jit_first")

        let map = try #require(FileHandle(forWritingAtPath: path))
        try map.seekToEnd()
        try map.write(contentsOf: Data("7f0000002000 100 jit_second\n".utf8))
        try map.close()
        // Within a window the map read stands; the next window reads the grown map.
        #expect(symbolizer.jitFunction(pid: pid, address: 0x7f00_0000_2010) == nil)
        symbolizer.jitMapsMayHaveGrown()
        #expect(symbolizer.jitFunction(pid: pid, address: 0x7f00_0000_2010) == "jit_second")
        #expect(symbolizer.jitFunction(pid: pid, address: 0x7f00_0000_1010) == "jit_first")
    }
}
