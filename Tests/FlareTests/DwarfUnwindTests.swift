import FlareProfile
import FlareSymbols
import Foundation
import Testing

/// Complete stacks through code without frame pointers, checked against
/// `perf record --call-graph dwarf` on the same workloads.
@Suite("DWARF unwinding", .serialized)
struct DwarfUnwindTests {
    static let frequency = "999"
    static let optimized = ["-O2", "-fomit-frame-pointer"]

    /// Records with Flare (DWARF call graphs, inlined calls folded into their
    /// caller as perf --no-inline does) and with perf, and checks that
    /// every stack holding at least 1% of either profile has the same frame
    /// sequence and shares in both that differ by no more than sampling
    /// explains (a stack one unwinder gets wrong is absent from the other
    /// profile: a difference of its whole share); returns Flare's stacks.
    @discardableResult
    static func compareWithPerf(_ command: [String], unnamedByPerf: Set<String> = [], demangleSwift: Bool = false) throws -> [String: Int] {
        let flare = try TestSupport.flare(["record", "-F", frequency, "--no-inline", "--format", "folded", "-q", "--"] + command)
        #expect(flare.status == 0, "\(flare.stderr)")
        let ours = PerfScript.normalizedFolded(flare.stdout, unnamed: unnamedByPerf)
        let theirs = try PerfScript.dwarfStacks(command, frequency: frequency, demangleSwift: demangleSwift)
        let ourTotal = Double(ours.values.reduce(0, +))
        let theirTotal = Double(theirs.values.reduce(0, +))
        #expect(ourTotal > 300 && theirTotal > 300)
        func share(_ stacks: [String: Int], _ key: String, _ total: Double) -> Double { Double(stacks[key] ?? 0) * 100 / total }
        let significant = Set(
            theirs.filter { Double($0.value) * 100 / theirTotal >= 1 }.keys.sorted { theirs[$0]! > theirs[$1]! }.prefix(20)
            + ours.filter { Double($0.value) * 100 / ourTotal >= 1 }.keys.sorted { ours[$0]! > ours[$1]! }.prefix(20)
        )
        #expect(!significant.isEmpty)
        for stack in significant {
            let a = share(ours, stack, ourTotal)
            let b = share(theirs, stack, theirTotal)
            let tolerance = SampledShares.tolerance(a / 100, of: ourTotal, b / 100, of: theirTotal)
            #expect(abs(a - b) <= tolerance, "stack \(stack): flare \(a)% of \(ourTotal) vs perf \(b)% of \(theirTotal) (± \(tolerance))")
        }
        return ours
    }

    /// Share of samples whose stack runs from `_start` through `root`.
    static func completeShare(_ stacks: [String: Int], through root: String = "main") -> Double {
        let total = Double(stacks.values.reduce(0, +))
        let complete = stacks.filter { $0.key.hasPrefix("_start;") && $0.key.split(separator: ";").contains(Substring(root)) }
        return Double(complete.values.reduce(0, +)) * 100 / total
    }

    @Test func deepLeafWithoutFramePointers() throws {
        let binary = try TestSupport.compileC("deep_nofp.c", flags: Self.optimized)
        let stacks = try Self.compareWithPerf([binary, "1200"])
        #expect(Self.completeShare(stacks) >= 95)
        let hot = stacks.filter { $0.key.hasSuffix("main;level_one;level_two;level_three;leaf_hot") }
        #expect(Double(hot.values.reduce(0, +)) >= 0.9 * Double(stacks.values.reduce(0, +)))
    }

    @Test func throughLibcQsortAndBsearch() throws {
        let binary = try TestSupport.compileC("libc_sort.c", flags: Self.optimized)
        let stacks = try Self.compareWithPerf([binary, "60"])
        #expect(Self.completeShare(stacks) >= 95)
        #expect(stacks.keys.contains { $0.contains("qsort_r;msort_with_tmp") && $0.hasSuffix(";compare_keys") })
        #expect(stacks.keys.contains { $0.contains(";bsearch;") || $0.contains(";search_batch;compare_keys") })
    }

    @Test func twoHundredDeepRecursion() throws {
        let binary = try TestSupport.compileC("recursion.c", flags: Self.optimized)
        let stacks = try Self.compareWithPerf([binary, "1500"])
        #expect(Self.completeShare(stacks) >= 95)
        let full = stacks.filter { $0.key.components(separatedBy: ";recurse").count - 1 == 201 }
        #expect(Double(full.values.reduce(0, +)) >= 0.9 * Double(stacks.values.reduce(0, +)))
    }

    /// A hot handler interrupting a loop: the walk crosses the kernel's signal
    /// frame, whose CFI is DWARF expressions that the compact tables leave to
    /// libdw's unwinder. (perf leaves glibc's `__restore_rt` unnamed.)
    @Test func throughASignalFrame() throws {
        let binary = try TestSupport.compileC("signal_frame.c", flags: Self.optimized)
        let stacks = try Self.compareWithPerf([binary, "1200"], unnamedByPerf: ["__restore_rt"])
        #expect(Self.completeShare(stacks) >= 95)
        // The workload signals itself every other round, so the handler holds about 15 % of the
        // samples (perf's share is compared above); an unwinder that cannot cross the signal
        // frame leaves this stack at 0.
        let handler = stacks.filter { $0.key.hasSuffix("main;interrupted_loop;[unknown];handler_work") }
        #expect(Double(handler.values.reduce(0, +)) >= 0.02 * Double(stacks.values.reduce(0, +)), "\(stacks)")
    }

    @Test func intoADlopenedLibrary() throws {
        let plugin = TestSupport.temporaryPath("plugin.so")
        let built = try TestSupport.run("/usr/bin/gcc", Self.optimized + ["-shared", "-fPIC", "-o", plugin,
                                                                        TestSupport.workloadSources.appendingPathComponent("plugin.c").path])
        #expect(built.status == 0, "\(built.stderr)")
        let host = try TestSupport.compileC("dlopen_host.c", flags: Self.optimized + ["-ldl"])
        let stacks = try Self.compareWithPerf([host, plugin, "1200"])
        #expect(Self.completeShare(stacks) >= 95)
        #expect(stacks.keys.contains { $0.hasSuffix("main;call_plugin;plugin_entry;plugin_hot") })
    }

    /// A Swift program (built as `swift build` does in debug; at -O, leaf
    /// functions have neither CFI nor a frame, and perf stops there too).
    @Test func swiftProgram() throws {
        let binary = try TestSupport.compileSwift("hot.swift")
        let stacks = try Self.compareWithPerf([binary, "3000"], demangleSwift: true)
        #expect(Self.completeShare(stacks) >= 95, "\(stacks.sorted { $0.value > $1.value }.prefix(3))")
        #expect(stacks.keys.contains { $0.hasSuffix(";main;hot.hotLoop(Swift.Int, Swift.Int) -> Swift.Int") })
    }

    @Test func framePointerModeStillWorks() throws {
        let binary = try TestSupport.compileC("proportions.c")
        let flare = try TestSupport.flare(["record", "-F", Self.frequency, "--call-graph", "fp", "--format", "folded", "-q", "--", binary, "100"])
        #expect(flare.status == 0)
        #expect(flare.stdout.contains("main;work_forty "))
    }

    @Test func aTinyStackCopyEndsInAMarker() throws {
        let binary = try TestSupport.compileC("recursion.c", output: "recursion_small", flags: Self.optimized)
        let flare = try TestSupport.flare(["record", "-F", Self.frequency, "--stack-size", "512", "--format", "folded", "--", binary, "300"])
        #expect(flare.status == 0)
        #expect(flare.stdout.contains("[truncated: stack copy too small];recurse"))
        #expect(flare.stderr.contains("[truncated: stack copy too small]"))
    }
}

/// File and line from DWARF, and inlined calls as frames of their own.
@Suite("DWARF symbolization", .serialized)
struct DwarfSymbolizationTests {
    @Test func pprofShowsTheHotLoopsLineAndTheInlinedFrame() throws {
        let binary = try TestSupport.compileC("inlined.c", flags: ["-O2", "-g"])
        let path = TestSupport.temporaryPath("inlined.pb.gz")
        let flare = try TestSupport.flare(["record", "-F", "999", "-q", "-o", path, "--", binary, "1000"])
        #expect(flare.status == 0, "\(flare.stderr)")
        let source = try String(contentsOf: TestSupport.workloadSources.appendingPathComponent("inlined.c"), encoding: .utf8)
        let hotLine = try #require(source.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("MIX_LOOP") }) + 1
        let callLine = try #require(source.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("x = mix(x, n);") }) + 1

        let lines = try TestSupport.run(try TestSupport.pprof(), ["-lines", "-top", "-nodecount=3", path])
        #expect(lines.status == 0, "\(lines.stderr)")
        let top = lines.stdout.split(separator: "\n").first { $0.contains("%") && $0.contains("inlined.c") }
        #expect(top?.contains("mix") == true, "\(lines.stdout)")
        #expect(top?.contains("inlined.c:\(hotLine)") == true, "\(lines.stdout)")
        // Every node shown: pprof labels a node "(inline)" by its edge from the
        // caller, which a short list drops once kernel frames (preemption on a
        // loaded machine) outrank the caller's zero self time.
        let plain = try TestSupport.run(try TestSupport.pprof(), ["-top", "-nodecount=1000", path])
        #expect(plain.stdout.contains("mix (inline)"), "\(plain.stdout)")

        // The location holds both frames: mix at the loop, then churn at the call.
        let profile = try Profile(pprofFile: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        let hot = try #require(profile.samples.max { $0.values[0] < $1.values[0] })
        let frames = profile.frames(of: hot)
        #expect(frames.count >= 3)
        #expect(frames[0].function == "mix" && frames[0].line == Int64(hotLine))
        #expect(frames[1].function == "churn" && frames[1].line == Int64(callLine))
        #expect(frames[2].function == "main")
        // Each function's first line (pprof start_line, from DW_AT_decl_line), the inlined one's too.
        func declared(_ prefix: String) -> Int64 {
            Int64((source.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(prefix) } ?? -1) + 1)
        }
        #expect(frames[0].startLine == declared("static inline __attribute__((always_inline)) unsigned long mix("))
        #expect(frames[1].startLine == declared("__attribute__((noinline)) unsigned long churn("))
        #expect(frames[2].startLine == declared("int main("))
        let mapping = try #require(profile.mappings.first { profile.string($0.filename) == binary })
        #expect(mapping.hasFunctions && mapping.hasFilenames && mapping.hasLineNumbers && mapping.hasInlineFrames)
    }

    /// The agent reads DWARF only up to a size: beyond it a frame keeps its
    /// ELF symbol's name (read from the file's string table) but no file, line or inlined calls.
    @Test func debugInfoOverTheLimitIsLeftUnread() throws {
        let binary = try TestSupport.compileC("inlined.c", output: "inlined_limit", flags: ["-O2", "-g"])
        let nm = try TestSupport.run("/usr/bin/nm", [binary])
        let churn = try #require(nm.stdout.split(separator: "\n").first { $0.hasSuffix(" churn") }?.split(separator: " ").first)
        let address = try #require(UInt64(churn, radix: 16)) + 4
        func frames(limit: Int) throws -> [SourceFrame] {
            let symbolizer = Symbolizer(maxDebugInfoBytes: limit)
            let image = try #require(symbolizer.image(identity: "inlined_limit", candidates: [binary]))
            #expect(image.virtualAddress(fileOffset: address) == address, "text is mapped at its file offset")
            return try #require(symbolizer.frames(in: image, fileOffset: address))
        }
        let read = try frames(limit: .max)
        #expect(read.last?.function == "churn" && read.last?.file.hasSuffix("inlined.c") == true && (read.last?.line ?? 0) > 0, "\(read)")
        let unread = try frames(limit: 1024)
        #expect(unread == [SourceFrame(function: "churn", file: "", line: 0)], "\(unread)")
    }

    @Test func aStrippedBinaryStillUnwindsAndIsNamedByDynamicSymbols() throws {
        let binary = try TestSupport.compileC("deep_nofp.c", output: "deep_stripped", flags: ["-O2", "-fomit-frame-pointer", "-rdynamic"])
        let stripped = try TestSupport.run("/usr/bin/strip", ["--strip-all", binary])
        #expect(stripped.status == 0)
        let flare = try TestSupport.flare(["record", "-F", "999", "--format", "folded", "-q", "--", binary, "600"])
        #expect(flare.status == 0)
        // .eh_frame survives strip, and -rdynamic keeps the names in .dynsym.
        #expect(flare.stdout.contains("main;level_one;level_two;level_three;leaf_hot "), "\(flare.stdout.prefix(500))")
    }

    @Test func jitFramesAreNamedFromThePerfMap() throws {
        let binary = try TestSupport.compileC("jit.c", flags: ["-O2"])
        let flare = try TestSupport.flare(["record", "-F", "999", "--format", "folded", "-q", "--", binary, "600"])
        #expect(flare.status == 0)
        #expect(flare.stdout.contains("main;run_jitted;jitted_counting_loop "), "\(flare.stdout.prefix(500))")
    }

    @Test func corruptCFIEndsStacksCleanly() throws {
        let binary = try TestSupport.compileC("deep_nofp.c", output: "deep_corrupt", flags: ["-O2", "-fomit-frame-pointer"])
        // The program never unwinds, so it runs; Flare must cope.
        try TestSupport.corruptEHFrame(of: binary)
        let flare = try TestSupport.flare(["record", "-F", "999", "--format", "folded", "-q", "--", binary, "600"])
        #expect(flare.status == 0, "\(flare.stderr)")
        let stacks = PerfScript.normalizedFolded(flare.stdout)
        #expect(stacks.values.reduce(0, +) > 300)
        #expect(stacks.keys.allSatisfy { $0.split(separator: ";").count <= 260 })
    }

    @Test func aBinaryReplacedWhileRunningIsStillNamed() throws {
        let binary = try TestSupport.compileC("deep_nofp.c", output: "deep_replaced", flags: ["-O2", "-fomit-frame-pointer"])
        let other = try TestSupport.compileC("proportions.c", output: "replacement")
        let flare = Process()
        flare.executableURL = URL(fileURLWithPath: TestSupport.flareBinary)
        let output = TestSupport.temporaryPath("replaced.folded")
        flare.arguments = ["record", "-F", "999", "--format", "folded", "-q", "-o", output, "--", binary, "1500"]
        try flare.run()
        Thread.sleep(forTimeInterval: 0.5)
        // Replace the file under the running process, as a deploy would.
        _ = rename(other, binary)
        flare.waitUntilExit()
        #expect(flare.terminationStatus == 0)
        let folded = try String(contentsOfFile: output, encoding: .utf8)
        #expect(folded.contains("main;level_one;level_two;level_three;leaf_hot "), "\(folded.prefix(400))")
    }
}

/// `flare convert` on perf's own recording: both tools unwind the very same samples.
@Suite("flare convert", .serialized)
struct ConvertTests {
    @Test func agreesWithPerfScriptOnTheSameSamples() throws {
        let binary = try TestSupport.compileC("libc_sort.c", output: "libc_sort_convert", flags: ["-O2", "-fomit-frame-pointer"])
        let data = TestSupport.temporaryPath("convert-\(UUID().uuidString).data")
        let perf = try TestSupport.perf()
        let recorded = try TestSupport.run(perf, ["record", "-q", "--call-graph", "dwarf,16384", "-e", "cpu-clock", "-F", "999", "-o", data, binary, "40"])
        #expect(recorded.status == 0, "\(recorded.stderr)")
        let theirs = try PerfScript.stacks(of: data)
        let flare = try TestSupport.flare(["convert", data, "--no-inline", "--format", "folded", "-q"])
        #expect(flare.status == 0, "\(flare.stderr)")
        let ours = PerfScript.normalizedFolded(flare.stdout)
        #expect(ours.values.reduce(0, +) == theirs.values.reduce(0, +), "both read every sample")
        let total = Double(theirs.values.reduce(0, +))
        for (stack, count) in theirs where Double(count) / total >= 0.01 {
            #expect(abs(Double(ours[stack] ?? 0) - Double(count)) / total <= 0.02, "\(stack): flare \(ours[stack] ?? 0), perf \(count)")
        }
    }

    @Test func rejectsAFileThatIsNotPerfData() throws {
        let path = TestSupport.temporaryPath("not-perf.data")
        FileManager.default.createFile(atPath: path, contents: Data("hello".utf8))
        let result = try TestSupport.flare(["convert", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not a perf.data file"))
    }
}
