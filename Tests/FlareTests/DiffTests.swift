#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import FlareFlameGraph
import FlareProfile
import Foundation
import Testing

/// `flare diff` end to end: two real builds of one workload recorded with the
/// real `flare record`, compared as files and through a real `flare store`;
/// the gate against ground truth and against same-build noise; bad input.
@Suite("flare diff", .serialized)
struct DiffTests {
    // MARK: Ground truth

    /// Work units per round of deploy.c's functions in each build. The two
    /// changes differ in size by about 6.5 points (+23.5 and -17.0), four
    /// standard errors of their difference at 3 000 samples a side, so the
    /// ranking the tests check is not left to sampling noise.
    static let v1Units = ["deploy_slowed": 20.0, "deploy_faster": 30.0, "deploy_steady_a": 25.0, "deploy_steady_b": 25.0]
    static let v2Units = ["deploy_slowed": 50.0, "deploy_faster": 15.0, "deploy_steady_a": 25.0, "deploy_steady_b": 25.0]

    /// The expected change of each function's self share, in points, from the work units alone.
    static func expectedPoints(_ function: String) -> Double {
        func share(_ units: [String: Double]) -> Double { 100 * units[function]! / units.values.reduce(0, +) }
        return share(v2Units) - share(v1Units)
    }

    /// How far a measured change may stray from `expectedPoints`: four
    /// standard errors of the two sampled shares, plus a point for what
    /// sampling does not explain (the machine's timing). About 5 points at
    /// 3 000 samples a side; a wrong sign, scale or normalization is off by
    /// 15 to 35.
    static func tolerance(_ function: String, _ report: [String: Any]) -> Double {
        func samples(_ side: String) -> Double { max(1, number(report[side] as? [String: Any], "samples")) }
        func fraction(_ units: [String: Double]) -> Double { units[function]! / units.values.reduce(0, +) }
        return SampledShares.tolerance(ofChange: fraction(v1Units), samples("base"), fraction(v2Units), samples("target"))
    }

    static let cpuSeconds = "3"
    static let noisePairs = 10

    /// The recordings every test shares: 2 × `noisePairs` runs of v1 and one of v2.
    struct Recordings: Sendable {
        var v1: [String]
        var v2: String
    }

    static let recordings: Result<Recordings, any Error> = Result {
        func units(_ u: [String: Double]) -> [String] {
            ["-DSLOWED_UNITS=\(Int(u["deploy_slowed"]!))", "-DFASTER_UNITS=\(Int(u["deploy_faster"]!))",
             "-DSTEADY_A_UNITS=\(Int(u["deploy_steady_a"]!))", "-DSTEADY_B_UNITS=\(Int(u["deploy_steady_b"]!))"]
        }
        let flags = ["-O0", "-fno-omit-frame-pointer"]
        let v1 = try TestSupport.compileC("deploy.c", output: "deploy_v1", flags: flags + units(DiffTests.v1Units))
        let v2 = try TestSupport.compileC("deploy.c", output: "deploy_v2", flags: flags + units(DiffTests.v2Units))
        // Two recordings at a time, one per CPU: shares follow work units, not wall time.
        let jobs = (0..<(2 * DiffTests.noisePairs)).map { (v1, "diff-v1-\($0)") } + [(v2, "diff-v2")]
        let results = ResultList(count: jobs.count)
        for start in stride(from: 0, to: jobs.count, by: 2) {
            let batch = Array(jobs[start..<min(start + 2, jobs.count)])
            DispatchQueue.concurrentPerform(iterations: batch.count) { i in
                results.set(start + i, Result { try DiffTests.record(batch[i].0, name: batch[i].1) })
            }
        }
        let paths = try results.values.map { try $0!.get() }
        return Recordings(v1: Array(paths.dropLast()), v2: paths.last!)
    }

    static func record(_ binary: String, name: String) throws -> String {
        let path = TestSupport.temporaryPath("\(name).pb.gz")
        let output = try TestSupport.flare(["record", "-F", "999", "--call-graph", "fp", "-q", "-o", path, "--", binary, DiffTests.cpuSeconds])
        guard output.status == 0 else { throw TestFailure("flare record \(binary) failed (\(output.status)): \(output.stderr)") }
        return path
    }

    /// `flare diff ARGS --json -`: the exit status, the parsed report, stderr.
    static func diffJSON(_ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, report: [String: Any], stderr: String) {
        let output = try TestSupport.run(TestSupport.flareBinary, ["diff", "--json", "-"] + arguments, environment: environment)
        guard let report = try? JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any] else {
            throw TestFailure("flare diff \(arguments) wrote no JSON report (exit \(output.status)): \(output.stderr)")
        }
        return (output.status, report, output.stderr)
    }

    static func functions(_ report: [String: Any]) -> [[String: Any]] { report["functions"] as? [[String: Any]] ?? [] }

    static func row(_ report: [String: Any], _ name: String) -> [String: Any]? { functions(report).first { $0["name"] as? String == name } }

    static func number(_ row: [String: Any]?, _ key: String) -> Double { (row?[key] as? NSNumber)?.doubleValue ?? .nan }

    @Test("v1 → v2: the slowed function ranks first with the right size, the faster one shrinks, the rest stay put; the gate fails")
    func groundTruth() throws {
        let r = try Self.recordings.get()
        let (status, report, stderr) = try Self.diffJSON([r.v1[0], r.v2, "--gate"])
        #expect(status == 1, "the gate must fail on v1 → v2: \(stderr)")
        let ranked = Self.functions(report).compactMap { $0["name"] as? String }
        #expect(ranked.first == "deploy_slowed", "ranking: \(ranked.prefix(5))")
        for name in Self.v1Units.keys {
            let (expected, tolerance) = (Self.expectedPoints(name), Self.tolerance(name, report))
            let actual = Self.number(Self.row(report, name), "self_points")
            #expect(abs(actual - expected) <= tolerance, "\(name): \(actual) points instead of \(expected) ± \(tolerance)")
            // A leaf function: its total changes like its self.
            #expect(abs(Self.number(Self.row(report, name), "total_points") - expected) <= tolerance)
        }
        #expect(Self.number(Self.row(report, "deploy_faster"), "self_points") < -10)
        // main runs everything in both builds.
        #expect(abs(Self.number(Self.row(report, "main"), "total_points")) <= 3)
        let gate = try #require(report["gate"] as? [String: Any])
        #expect(gate["passed"] as? Bool == false)
        let violations = (gate["violations"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(violations == ["deploy_slowed"])
        #expect((gate["max_self_growth_points"] as? NSNumber)?.doubleValue == 5)

        // The table names the offender and the verdict; exit status as documented.
        let table = try TestSupport.flare(["diff", r.v1[0], r.v2, "--gate"])
        #expect(table.status == 1)
        #expect(table.stdout.contains("gate: FAILED: 1 function grew by more than self share +5.0 points"))
        #expect(table.stdout.contains("  deploy_slowed: self "))
        let firstRow = table.stdout.split(separator: "\n").first { $0.hasSuffix("  deploy_slowed") || $0.hasSuffix("  deploy_faster") }
        #expect(firstRow?.hasSuffix("deploy_slowed") == true, "table: \(table.stdout)")

        // The differential flame graph's document has the viewer's diff columns.
        let documentPath = TestSupport.temporaryPath("diff-document.json")
        #expect(try TestSupport.flare(["diff", r.v1[0], r.v2, "-q", "--document", documentPath]).status == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: documentPath))) as? [String: Any])
        #expect(document["mode"] as? String == "normalized")
        let nodes = try #require(document["nodes"] as? [String: Any])
        #expect(Set(nodes.keys) == ["name", "parent", "total_a", "self_a", "total_b", "self_b"])
        #expect((document["functions"] as? [[String: Any]])?.first?["name"] as? String == "deploy_slowed")

        // --html inlines that same document into the viewer: one file, no external resources.
        let htmlPath = TestSupport.temporaryPath("diff.html")
        #expect(try TestSupport.flare(["diff", r.v1[0], r.v2, "-q", "--html", htmlPath]).status == 0)
        let html = try String(contentsOfFile: htmlPath, encoding: .utf8)
        #expect(html.contains("deploy_slowed") && html.contains("total_b") && html.contains("<canvas"))
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http"))

        // Absolute mode ranks by raw counts and says so.
        let (_, absolute, _) = try Self.diffJSON([r.v1[0], r.v2, "--absolute"])
        #expect(absolute["mode"] as? String == "absolute")
        #expect(Self.functions(absolute).first?["name"] as? String == "deploy_slowed")
    }

    @Test("ten pairs of same-build runs never trip the gate at its defaults; v1 → v1 exits 0")
    func noise() throws {
        let r = try Self.recordings.get()
        var largest = 0.0
        for pair in 0..<Self.noisePairs {
            let (status, report, stderr) = try Self.diffJSON([r.v1[2 * pair], r.v1[2 * pair + 1], "--gate"])
            let grown = Self.functions(report).map { Self.number($0, "self_points") }.max() ?? 0
            largest = max(largest, grown)
            #expect(status == 0, "pair \(pair) tripped the gate (largest self growth \(grown) points): \(stderr)")
            let gate = report["gate"] as? [String: Any]
            #expect(gate?["passed"] as? Bool == true)
        }
        print("noise: largest self-share growth over \(Self.noisePairs) same-build pairs: \(largest) points (gate: 5)")
        // The same file against itself changes nothing.
        let (status, report, _) = try Self.diffJSON([r.v1[0], r.v1[0], "--gate"])
        #expect(status == 0)
        #expect(Self.functions(report).allSatisfy { Self.number($0, "self_points") == 0 })
    }

    // MARK: Bad input

    /// One `flare: error:` line and exit status 2.
    static func expectBadInput(_ output: TestSupport.Output, mentioning words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(output.status == 2, "exit \(output.status): \(output.stderr)", sourceLocation: sourceLocation)
        let lines = output.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("flare: error: "), "stderr: \(output.stderr)", sourceLocation: sourceLocation)
        for word in words { #expect(output.stderr.contains(word), "\(word) not in: \(output.stderr)", sourceLocation: sourceLocation) }
    }

    static func writeProfile(_ name: String, types: [(String, String)], samples: Int) throws -> String {
        var profile = Profile()
        func intern(_ s: String) -> Int64 { profile.stringTable.append(s); return Int64(profile.stringTable.count - 1) }
        profile.sampleTypes = types.map { Profile.ValueType(type: intern($0.0), unit: intern($0.1)) }
        var function = Profile.Function(id: 1)
        function.name = intern("work")
        profile.functions = [function]
        var location = Profile.Location(id: 1)
        location.lines = [Profile.Line(functionID: 1)]
        profile.locations = [location]
        profile.samples = (0..<samples).map { _ in Profile.Sample(locationIDs: [1], values: types.map { _ in 10 }) }
        let path = TestSupport.temporaryPath(name)
        try Data(profile.gzippedPprof()).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("missing, corrupt, non-CPU, mismatched and empty profiles: one clear line and exit 2")
    func badFiles() throws {
        let good = try Self.writeProfile("good.pb.gz", types: [("samples", "count"), ("cpu", "nanoseconds")], samples: 3)
        let missing = TestSupport.temporaryPath("no-such-profile.pb.gz")
        Self.expectBadInput(try TestSupport.flare(["diff", missing, good]), mentioning: ["cannot read the base profile", "No such file"])

        let corrupt = TestSupport.temporaryPath("corrupt.pb.gz")
        try Data([0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02]).write(to: URL(fileURLWithPath: corrupt))
        Self.expectBadInput(try TestSupport.flare(["diff", good, corrupt]), mentioning: ["target file", "is not a pprof profile"])

        let heap = try Self.writeProfile("heap.pb.gz", types: [("alloc_space", "bytes")], samples: 3)
        Self.expectBadInput(try TestSupport.flare(["diff", good, heap]), mentioning: ["alloc_space/bytes", "CPU profile"])

        let countsOnly = try Self.writeProfile("counts.pb.gz", types: [("samples", "count")], samples: 3)
        let cpuOnly = try Self.writeProfile("cpu.pb.gz", types: [("cpu", "nanoseconds")], samples: 3)
        Self.expectBadInput(try TestSupport.flare(["diff", countsOnly, cpuOnly]), mentioning: ["mismatched sample types", "samples/count", "cpu/nanoseconds"])

        let empty = try Self.writeProfile("empty.pb.gz", types: [("samples", "count"), ("cpu", "nanoseconds")], samples: 0)
        Self.expectBadInput(try TestSupport.flare(["diff", empty, good]), mentioning: ["has no samples"])

        // A gate cannot judge 30 samples: no verdict, exit 2, not a pass.
        let tiny = try TestSupport.flare(["diff", good, good, "--gate"])
        #expect(tiny.status == 2)
        #expect(tiny.stdout.contains("gate: NO VERDICT: the base has 30 samples"))
    }

    // MARK: Store selections

    @Test("store selections: versions listed oldest first, the same report as the files, bad selections refused")
    func storeSelections() throws {
        let r = try Self.recordings.get()
        let directory = TestSupport.temporaryPath("diff-store-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tokenFile = directory + "/query.token"
        try "s3cret\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let store = try DiffStore(dataDirectory: directory, arguments: ["--query-token-file", tokenFile, "--retention", "0", "--downsample-after", "0"])
        defer { store.stop() }

        // Two deploys of service "deploy", an hour apart, and one window of another version later.
        let t0: Int64 = 1_760_000_000
        try store.ingest(r.v1[0], service: "deploy", version: "1.4", windowID: "a", from: t0, until: t0 + 10)
        try store.ingest(r.v1[1], service: "deploy", version: "1.4", windowID: "b", from: t0 + 10, until: t0 + 20)
        try store.ingest(r.v2, service: "deploy", version: "1.5", windowID: "c", from: t0 + 3600, until: t0 + 3610)

        let versions = try store.getJSON("/api/v1/versions?service=deploy", token: "s3cret")
        let list = versions["versions"] as? [[String: Any]] ?? []
        #expect(versions["service"] as? String == "deploy")
        #expect(list.compactMap { $0["version"] as? String } == ["1.4", "1.5"])
        #expect((list.first?["windows"] as? NSNumber)?.intValue == 2)
        #expect((list.first?["first_ns"] as? NSNumber)?.int64Value == t0 * 1_000_000_000)
        #expect((list.first?["last_ns"] as? NSNumber)?.int64Value == (t0 + 20) * 1_000_000_000)

        var environment = ProcessInfo.processInfo.environment
        environment["FLARE_QUERY_TOKEN"] = "s3cret"
        let storeArguments = ["--store", store.baseURL, "--base", "service=deploy,version=1.4", "--target", "version=1.5", "--gate"]
        let (status, report, stderr) = try Self.diffJSON(storeArguments, environment: environment)
        #expect(status == 1, "v1.4 → v1.5 must fail the gate: \(stderr)")
        #expect(Self.functions(report).first?["name"] as? String == "deploy_slowed")
        #expect((report["base"] as? [String: Any])?["label"] as? String == "service=deploy,version=1.4")
        #expect((report["target"] as? [String: Any])?["label"] as? String == "version=1.5,service=deploy")

        // Version 1.4 is two recordings merged; the changes still match the work units.
        for name in Self.v1Units.keys {
            let (expected, tolerance) = (Self.expectedPoints(name), Self.tolerance(name, report))
            #expect(abs(Self.number(Self.row(report, name), "self_points") - expected) <= tolerance, "\(name) through the store")
        }
        // One window each: exactly the file diff's numbers.
        let single = try Self.diffJSON(["--store", store.baseURL, "--token-file", tokenFile, "--base", "service=deploy,version=1.4,from=\(t0),until=\(t0 + 10)",
                                        "--target", "version=1.5,from=\(t0 + 3600),until=\(t0 + 3610)"])
        let files = try Self.diffJSON([r.v1[0], r.v2])
        #expect(single.status == 0, "\(single.stderr)")
        for name in Self.v1Units.keys {
            #expect(abs(Self.number(Self.row(single.report, name), "self_points") - Self.number(Self.row(files.report, name), "self_points")) < 0.001)
            #expect(Self.number(Self.row(single.report, name), "self_base") == Self.number(Self.row(files.report, name), "self_base"))
        }

        // previous → latest is the same pair.
        let named = try Self.diffJSON(["--store", store.baseURL, "--base", "service=deploy,version=previous", "--target", "version=latest"], environment: environment)
        #expect(named.status == 0)
        #expect(Self.functions(named.report).first?["name"] as? String == "deploy_slowed")

        // Bad selections: one line, exit 2.
        func diff(_ base: String, _ target: String, env: [String: String]?) throws -> TestSupport.Output {
            try TestSupport.run(TestSupport.flareBinary, ["diff", "--store", store.baseURL, "--base", base, "--target", target], environment: env)
        }
        Self.expectBadInput(try diff("service=deploy,version=1.4", "version=9.9", env: environment), mentioning: ["version 9.9 of deploy is not in the store", "1.4, 1.5"])
        Self.expectBadInput(try diff("service=deploy,from=2001-01-01T00:00:00Z,until=2001-01-02T00:00:00Z", "version=1.5", env: environment),
                            mentioning: ["base selection", "has no samples"])
        Self.expectBadInput(try diff("service=nosuch,version=1", "version=2", env: environment), mentioning: ["unknown service", "nosuch"])
        var noToken = ProcessInfo.processInfo.environment
        noToken["FLARE_QUERY_TOKEN"] = nil
        Self.expectBadInput(try diff("service=deploy,version=1.4", "version=1.5", env: noToken), mentioning: ["query token", "401"])
        let down = try TestSupport.run(TestSupport.flareBinary, ["diff", "--store", "http://127.0.0.1:1", "--base", "service=deploy,version=1", "--target", "version=2"])
        Self.expectBadInput(down, mentioning: ["cannot reach the store"])
    }

    // MARK: Pure parts

    @Test("z-scores, the gate's guards and terminal-safe names")
    func pureParts() {
        // 30 % → 35 % over 1 000 samples a side: 2.4 standard errors.
        #expect(abs(DiffReport.zScore(0.30, 1000, 0.35, 1000) - 2.4) < 0.05)
        func report(_ nA: Int64, _ nB: Int64, selfA: Double, selfB: Double) -> DiffReport {
            DiffReport(functions: [.init(function: FunctionName(name: "f\u{1b}[31m", file: ""), selfBase: selfA, selfTarget: selfB, totalBase: selfA, totalTarget: selfB)],
                       base: .init(label: "a", total: Double(nA), samples: nA), target: .init(label: "b", total: Double(nB), samples: nB),
                       unit: "samples", mode: .normalized)
        }
        let gate = DiffGate()
        // +6 points on 1 000 samples a side is within noise (z = 2.9); on 12 000 it is not.
        let small = gate.evaluate(report(1000, 1000, selfA: 300, selfB: 360))
        #expect(small.passed && small.withinNoise.count == 1)
        let large = gate.evaluate(report(12000, 12000, selfA: 3600, selfB: 4320))
        #expect(!large.passed && large.violations.count == 1)
        #expect(gate.evaluate(report(500, 5000, selfA: 100, selfB: 2000)).tooFewSamples?.side == "base")
        // Names cannot drive the terminal.
        let text = report(12000, 12000, selfA: 3600, selfB: 4320).table(top: 5, gate: gate, verdict: large)
        #expect(!text.unicodeScalars.contains { $0.value == 0x1b })
        #expect(TerminalText.safe("a\u{9b}2Jb\u{202e}c") == "a?2Jb?c")
    }
}

/// Results filled in from several threads.
final class ResultList: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Result<String, any Error>?]
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<String, any Error>) { lock.lock(); items[i] = r; lock.unlock() }
    var values: [Result<String, any Error>?] { lock.lock(); defer { lock.unlock() }; return items }
}

/// The real `flare store`, on a free loopback port, for the store-selection test.
final class DiffStore: @unchecked Sendable {
    let process = Process()
    let logPath: String
    private(set) var port = 0
    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(dataDirectory: String, arguments: [String]) throws {
        logPath = dataDirectory + "/store.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: TestSupport.flareBinary)
        process.arguments = ["store", "--address", "127.0.0.1:0", "--data-dir", dataDirectory] + arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression),
               let found = Int(text[range].split(separator: ":").last!) {
                port = found
                return
            }
            guard process.isRunning else { throw TestFailure("flare store exited at start: \(text)") }
            usleep(50_000)
        }
        process.terminate()
        throw TestFailure("flare store did not start within 60 s")
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    func request(_ path: String, method: String = "GET", body: Data? = nil, token: String? = nil) throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = 60
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let done = DispatchSemaphore(value: 0)
        let box = ResponseBox()
        URLSession.shared.dataTask(with: request) { data, response, error in
            box.set(((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data(), error))
            done.signal()
        }.resume()
        done.wait()
        let (status, data, error) = box.get()
        if let error { throw TestFailure("\(method) \(path): \(error)") }
        return (status, data)
    }

    func ingest(_ file: String, service: String, version: String, windowID: String, from: Int64, until: Int64) throws {
        let labels = "{service.version=\"\(version)\"}".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let (status, data) = try request("/api/v1/profiles?service=\(service)&window_id=\(windowID)&labels=\(labels)&from=\(from)&until=\(until)",
                                         method: "POST", body: try Data(contentsOf: URL(fileURLWithPath: file)))
        guard status == 200 else { throw TestFailure("ingest \(file): HTTP \(status) \(String(decoding: data, as: UTF8.self))") }
    }

    func getJSON(_ path: String, token: String?) throws -> [String: Any] {
        let (status, data) = try request(path, token: token)
        guard status == 200, let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestFailure("GET \(path): HTTP \(status) \(String(decoding: data, as: UTF8.self))")
        }
        return object
    }
}

private final class ResponseBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: (Int, Data, (any Error)?) = (0, Data(), nil)
    func set(_ v: (Int, Data, (any Error)?)) { lock.lock(); value = v; lock.unlock() }
    func get() -> (Int, Data, (any Error)?) { lock.lock(); defer { lock.unlock() }; return value }
}
