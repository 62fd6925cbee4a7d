import FlareProfile
import Foundation
import Testing

/// `flare record` end to end: real perf_event sampling of real workloads,
/// checked against the known CPU split, against `pprof` and against `perf`.
/// Serialized: the workloads compete for this machine's two CPUs.
@Suite("flare record", .serialized)
struct RecordTests {
    static let frequency = "999"

    /// Records `arguments` (a target) to a pprof file and decodes it.
    static func record(_ arguments: [String], name: String = UUID().uuidString) throws -> (Profile, String, TestSupport.Output) {
        let path = TestSupport.temporaryPath("\(name).pb.gz")
        let output = try TestSupport.flare(["record", "-F", frequency, "-o", path] + arguments)
        guard output.status == 0 else { throw TestFailure("flare record failed (\(output.status)): \(output.stderr)") }
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        return (try Profile(pprofFile: bytes), path, output)
    }

    /// Self share of each function, in percent of all samples.
    static func selfShares(_ profile: Profile) -> SampledShares { SampledShares(selfSharesOf: profile) }

    /// The function's share is the workload's known split, within what sampling explains.
    static func expectShare(_ shares: SampledShares, _ function: String, _ expected: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        let actual = shares[function] ?? 0
        let tolerance = SampledShares.tolerance(expected: expected / 100, samples: shares.samples)
        #expect(abs(actual - expected) <= tolerance, "\(function): \(actual)% instead of \(expected)% ± \(tolerance) (\(shares.samples) samples)",
                sourceLocation: sourceLocation)
    }

    @Test func fourFunctionsInKnownProportions() throws {
        let binary = try TestSupport.compileC("proportions.c")
        let (profile, _, output) = try Self.record(["--", binary, "200"])
        let shares = Self.selfShares(profile)
        Self.expectShare(shares, "work_forty", 40)
        Self.expectShare(shares, "work_thirty", 30)
        Self.expectShare(shares, "work_twenty", 20)
        Self.expectShare(shares, "work_ten", 10)
        #expect(profile.samples.reduce(0) { $0 + $1.values[0] } > 1000)
        // The summary goes to the terminal beside the file.
        #expect(output.stdout.contains("Top functions by self time"))
        #expect(output.stdout.contains("work_forty"))
        // Every frame of every sample resolves to a function; callers appear above leaves.
        let folded = profile.folded()
        #expect(folded.contains("main;work_forty "))
        let mapping = try #require(profile.mappings.first { profile.string($0.filename) == binary })
        #expect(profile.string(mapping.buildID).count == 40)
        #expect(mapping.hasFunctions)
    }

    @Test func pprofReadsTheProfileWithTheSameTotals() throws {
        let binary = try TestSupport.compileC("proportions.c")
        let (profile, path, _) = try Self.record(["--", binary, "150"])
        let top = try TestSupport.run(try TestSupport.pprof(), ["-top", "-nodecount=4", "-sample_index=samples", path])
        #expect(top.status == 0, "pprof -top failed: \(top.stderr)")
        // Rows: flat flat% sum% cum cum% name
        let rows = top.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
            .filter { $0.count == 6 && Int64($0[0]) != nil }
        let theirs = rows.map { (String($0[5]), Int64($0[0])!) }
        let ours = FunctionTotals(profile).topBySelf(4).map { ($0.function, $0.selfValue) }
        #expect(theirs.map(\.0) == ours.map(\.0), "pprof: \(top.stdout)")
        #expect(theirs.map(\.1) == ours.map(\.1), "pprof: \(top.stdout)")
    }

    @Test func threadsAreFollowedAndLabelled() throws {
        let binary = try TestSupport.compileC("threads_cpu.c")
        let (profile, path, _) = try Self.record(["--", binary, "1500"])
        let shares = Self.selfShares(profile)
        Self.expectShare(shares, "work_alpha", 50)
        Self.expectShare(shares, "work_beta", 50)
        // Every sample in work_alpha carries thread_name=alpha, and the reverse.
        for sample in profile.samples {
            let leaf = profile.frames(of: sample).first?.function ?? ""
            let thread = sample.labels.first { profile.string($0.key) == "thread_name" }.map { profile.string($0.str) }
            if leaf == "work_alpha" { #expect(thread == "alpha") }
            if leaf == "work_beta" { #expect(thread == "beta") }
            #expect(sample.labels.contains { profile.string($0.key) == "thread_id" })
            #expect(sample.labels.contains { profile.string($0.key) == "pid" })
        }
        let focused = try TestSupport.run(try TestSupport.pprof(), ["-top", "-tagfocus=thread_name=alpha", path])
        #expect(focused.status == 0, "\(focused.stderr)")
        #expect(focused.stdout.contains("work_alpha"))
        #expect(!focused.stdout.contains("work_beta"))
    }

    @Test func perfAgreesOnTheTopThree() throws {
        let binary = try TestSupport.compileC("proportions.c")
        let (profile, _, _) = try Self.record(["--", binary, "150"])
        let data = TestSupport.temporaryPath("perf-\(UUID().uuidString).data")
        let perf = try TestSupport.perf()
        let recorded = try TestSupport.run(perf, ["record", "-q", "-g", "-e", "cpu-clock", "-F", Self.frequency, "-o", data, binary, "150"])
        #expect(recorded.status == 0, "perf record failed: \(recorded.stderr)")
        let report = try TestSupport.run(perf, ["report", "-i", data, "--stdio", "--no-children", "--sort", "symbol", "-q"])
        // Rows: "    39.87%  [.] work_forty"
        let theirs = report.stdout.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            return parts.count >= 3 && parts[0].hasSuffix("%") ? String(parts[2]) : nil
        }.prefix(3)
        let ours = FunctionTotals(profile).topBySelf(3).map(\.function)
        #expect(Array(theirs) == ours, "perf report: \(report.stdout.prefix(600))")
    }

    @Test func followsAForkedChild() throws {
        let binary = try TestSupport.compileC("fork.c")
        let (profile, _, _) = try Self.record(["--", binary, "1500"])
        let shares = Self.selfShares(profile)
        #expect((shares["child_work"] ?? 0) >= 90, "child_work: \(shares["child_work"] ?? 0)%")
        let pids = Set(profile.samples.flatMap { s in s.labels.filter { profile.string($0.key) == "pid" }.map { profile.string($0.str) } })
        #expect(!pids.isEmpty)
    }

    @Test func followsAnExec() throws {
        let exec = try TestSupport.compileC("exec.c")
        let target = try TestSupport.compileC("proportions.c")
        let (profile, _, _) = try Self.record(["--", exec, target, "200"])
        let shares = Self.selfShares(profile)
        Self.expectShare(shares, "work_forty", 40)
        Self.expectShare(shares, "work_ten", 10)
    }

    @Test func namesSwiftFunctionsDemangled() throws {
        let binary = try TestSupport.compileSwift("hot.swift")
        let (profile, _, _) = try Self.record(["--", binary, "3000"])
        let shares = Self.selfShares(profile)
        Self.expectShare(shares, "hot.hotLoop(Swift.Int, Swift.Int) -> Swift.Int", 75)
        Self.expectShare(shares, "hot.coolLoop(Swift.Int, Swift.Int) -> Swift.Int", 25)
    }

    @Test func recordsARunningProcessUntilItExits() throws {
        let binary = try TestSupport.compileC("proportions.c")
        let target = Process()
        target.executableURL = URL(fileURLWithPath: binary)
        target.arguments = ["200"]
        try target.run()
        let (profile, _, output) = try Self.record(["-p", String(target.processIdentifier)])
        target.waitUntilExit()
        #expect(output.stdout.contains("process \(target.processIdentifier) exited"))
        let shares = Self.selfShares(profile)
        // Attached a moment after start: the split still holds.
        Self.expectShare(shares, "work_forty", 40)
        Self.expectShare(shares, "work_ten", 10)
    }

    @Test func survivesATargetThatDeletesItsBinary() throws {
        let binary = try TestSupport.compileC("selfdelete.c")
        let (profile, _, _) = try Self.record(["--", binary, "1000"])
        #expect(!FileManager.default.fileExists(atPath: binary))
        let shares = Self.selfShares(profile)
        #expect((shares["work_after_delete"] ?? 0) >= 90, "\(shares.percent)")
    }

    @Test func recordsTheWholeMachineForADuration() throws {
        let binary = try TestSupport.compileC("threads.c", output: "threads_system")
        let target = Process()
        target.executableURL = URL(fileURLWithPath: binary)
        target.arguments = ["100000"]
        try target.run()
        // SIGKILL: the test runner may hand its children a blocked SIGTERM.
        defer { kill(target.processIdentifier, SIGKILL); target.waitUntilExit() }
        let (profile, _, output) = try Self.record(["-a", "-d", "1500ms", "--call-graph", "fp"])
        #expect(output.stdout.contains("duration reached"))
        let shares = Self.selfShares(profile)
        #expect((shares["work_alpha"] ?? 0) > 10, "\(shares.percent.sorted { $0.value > $1.value }.prefix(5))")
        #expect((shares["work_beta"] ?? 0) > 10)
    }

    @Test func ctrlCStillWritesTheProfile() throws {
        let binary = try TestSupport.compileC("proportions.c")
        let path = TestSupport.temporaryPath("interrupted.pb.gz")
        let flare = Process()
        flare.executableURL = URL(fileURLWithPath: TestSupport.flareBinary)
        flare.arguments = ["record", "-F", Self.frequency, "-q", "-o", path, "--", binary, "100000"]
        try flare.run()
        Thread.sleep(forTimeInterval: 1.5)
        kill(flare.processIdentifier, SIGINT)
        flare.waitUntilExit()
        #expect(flare.terminationStatus == 0)
        let profile = try Profile(pprofFile: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(Self.selfShares(profile)["work_forty"] ?? 0 > 20)
    }

    @Test func foldedOutputCountsEverySample() throws {
        let binary = try TestSupport.compileC("proportions.c")
        let output = try TestSupport.flare(["record", "-F", Self.frequency, "--format", "folded", "--", binary, "50"])
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n")
        #expect(!lines.isEmpty)
        var total = 0
        for line in lines {
            let parts = line.split(separator: " ")
            let count = try #require(Int(parts.last!))
            total += count
            #expect(line.hasPrefix("") && parts.count >= 2)
        }
        #expect(lines.contains { $0.contains("main;work_forty ") })
        // The summary goes to stderr so stdout stays pure folded stacks.
        #expect(output.stderr.contains("Recorded \(total) samples"))
    }
}
