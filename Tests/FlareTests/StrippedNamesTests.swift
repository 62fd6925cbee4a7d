import FlareProfile
import FlareSymbols
import Foundation
import Testing

/// Names for code stripped of its symbols: functions told apart by the
/// bounds of their CFI entries, checked against the unstripped build.
@Suite("Names for stripped code", .serialized)
struct StrippedNamesTests {
    static let functions = ["work_forty", "work_thirty", "work_twenty", "work_ten"]

    /// The proportions workload built with -g, and a copy stripped as
    /// distributions strip (debug info kept aside, no debuglink).
    static func builds() throws -> (unstripped: String, stripped: String, debug: String) {
        let unstripped = try TestSupport.compileC("proportions.c", output: "proportions_g", flags: ["-O1", "-g", "-fno-inline"])
        let stripped = TestSupport.temporaryPath("proportions_stripped")
        let debug = stripped + ".debug"
        for (tool, arguments) in [("/usr/bin/objcopy", ["--only-keep-debug", unstripped, debug]), ("/usr/bin/cp", [unstripped, stripped]),
                                  ("/usr/bin/strip", ["--strip-all", stripped])] {
            let result = try TestSupport.run(tool, arguments)
            guard result.status == 0 else { throw TestFailure("\(tool) failed: \(result.stderr)") }
        }
        return (unstripped, stripped, debug)
    }

    /// Each function's start as the stripped profile names it, by symbol:
    /// the file's name and the start's file offset, from the unstripped symbols.
    static func startNames(of unstripped: String, as strippedName: String) throws -> [String: String] {
        let image = try ElfImage(path: unstripped)
        let nm = try TestSupport.run("/usr/bin/nm", ["--defined-only", unstripped])
        var names: [String: String] = [:]
        for line in nm.stdout.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, "tTwW".contains(fields[1]), let address = UInt64(fields[0], radix: 16) else { continue }
            names[String(fields[2])] = strippedName + "+0x" + String(image.fileOffset(virtualAddress: address), radix: 16)
        }
        return names
    }

    @Test("a stripped binary's functions are one row each, named by their CFI start, with the unstripped build's shares")
    func functionsFromCallFrameInformation() throws {
        let (unstripped, stripped, _) = try Self.builds()
        #expect(!(try TestSupport.run("/usr/bin/nm", [stripped]).stdout.contains("work_forty")), "strip left the symbols")
        let starts = try Self.startNames(of: unstripped, as: "proportions_stripped")
        let expected = starts.filter { Self.functions.contains($0.key) }
        try #require(expected.count == 4, "nm found \(expected)")

        let (named, _, _) = try RecordTests.record(["--", unstripped, "400"])
        let (anonymous, _, _) = try RecordTests.record(["--", stripped, "400"])
        let namedShares = RecordTests.selfShares(named), anonymousShares = RecordTests.selfShares(anonymous)
        for function in Self.functions {
            let byName = namedShares[function] ?? 0, byStart = anonymousShares[expected[function]!] ?? 0
            #expect(abs(byName - byStart) <= 5, "\(function): \(byName)% named, \(byStart)% as \(expected[function]!)")
            #expect(byStart > 5, "\(expected[function]!) holds \(byStart)%")
        }
        // One row per function: every name in the stripped binary is a function's start, never a sampled instruction.
        let rows = Set(FunctionTotals(anonymous).entries.map(\.function).filter { $0.hasPrefix("proportions_stripped+0x") })
        #expect(rows.isSubset(of: Set(starts.values)), "not a function start: \(rows.subtracting(starts.values).sorted())")
        #expect(rows.isSuperset(of: Set(expected.values)))
        // Still nothing that claims a real name: pprof's has_functions stays false for the stripped file.
        let mapping = try #require(anonymous.mappings.first { anonymous.string($0.filename) == stripped })
        #expect(!mapping.hasFunctions)
    }

    // MARK: debuginfod

    /// Elfutils' own server (`debuginfod -F DIR`) on a free loopback port,
    /// serving the debug files in `directory`, up once it answers for `buildID`.
    final class DebuginfodServer {
        let process = Process()
        let port: Int
        var url: String { "http://127.0.0.1:\(port)" }

        init(serving directory: String, buildID: String, port: Int = Daemon.freePort()) throws {
            self.port = port
            let database = TestSupport.temporaryPath("debuginfod-\(UUID().uuidString.prefix(8)).sqlite")
            process.executableURL = URL(fileURLWithPath: "/usr/bin/debuginfod")
            process.arguments = ["-F", directory, "-p", String(port), "-d", database, "-t", "1"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let served = Daemon.wait(seconds: 60) { Daemon.get("\(self.url)/buildid/\(buildID)/debuginfo")?.status == 200 }
            if !served { stop(); throw TestFailure("debuginfod -F \(directory) did not serve \(buildID) within 60 s") }
        }

        /// SIGKILL: debuginfod 0.188 does not always exit on SIGTERM while it scans.
        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        deinit { stop() }
    }

    static func skipWithoutDebuginfod() -> Bool {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/debuginfod") else {
            print("SKIP: /usr/bin/debuginfod is not installed (scripts/install-deps installs Debian's debuginfod)")
            return true
        }
        return false
    }

    /// The stripped build and its debug file alone in a directory for the server.
    static func servedBuild() throws -> (unstripped: String, stripped: String, directory: String, buildID: String) {
        let (unstripped, stripped, debug) = try builds()
        let directory = TestSupport.temporaryPath("debuginfod-files-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: debug, toPath: directory + "/proportions.debug")
        return (unstripped, stripped, directory, try ElfImage(path: stripped).buildIDHex)
    }

    static func recordWithDebuginfod(_ binary: String, urls: String, cache: String) throws -> (Profile, TestSupport.Output) {
        let path = TestSupport.temporaryPath("\(UUID().uuidString).pb.gz")
        let output = try TestSupport.run(TestSupport.flareBinary, ["record", "-F", RecordTests.frequency, "-o", path, "--", binary, "400"],
                                         environment: ["DEBUGINFOD_URLS": urls, "DEBUGINFOD_CACHE_PATH": cache, "PATH": "/usr/bin:/bin"])
        guard output.status == 0 else { throw TestFailure("flare record failed: \(output.stderr)") }
        return (try Profile(pprofFile: [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))), output)
    }

    /// Each workload function's (file, start line) in a profile.
    static func sourceOf(_ profile: Profile) -> [String: String] {
        var found: [String: String] = [:]
        for function in profile.functions where functions.contains(profile.string(function.name)) {
            found[profile.string(function.name)] = "\(profile.string(function.filename)):\(function.startLine)"
        }
        return found
    }

    @Test("debug info from debuginfod: the stripped build gets the unstripped build's names, files and lines")
    func namesFromDebuginfod() throws {
        if Self.skipWithoutDebuginfod() { return }
        let (unstripped, stripped, directory, buildID) = try Self.servedBuild()
        let server = try DebuginfodServer(serving: directory, buildID: buildID)
        defer { server.stop() }
        let cache = TestSupport.temporaryPath("debuginfod-cache-\(UUID().uuidString.prefix(8))")

        let (named, _, _) = try RecordTests.record(["--", unstripped, "400"])
        let (fetched, output) = try Self.recordWithDebuginfod(stripped, urls: server.url, cache: cache)
        #expect(!output.stderr.contains("warning"), "\(output.stderr)")
        let namedShares = RecordTests.selfShares(named), fetchedShares = RecordTests.selfShares(fetched)
        for function in Self.functions {
            #expect(abs((namedShares[function] ?? 0) - (fetchedShares[function] ?? 0)) <= 5,
                    "\(function): \(namedShares[function] ?? 0)% unstripped, \(fetchedShares[function] ?? 0)% with debuginfod")
        }
        let source = Self.sourceOf(named)
        #expect(source.count == 4 && Self.sourceOf(fetched) == source, "\(Self.sourceOf(fetched)) instead of \(source)")
        // The lines sampled: all of them lines the unstripped build's samples have too.
        func lines(_ profile: Profile) -> Set<Int64> {
            Set(profile.locations.flatMap { $0.lines }.filter { Self.functions.contains(profile.string(profile.functions[Int($0.functionID) - 1].name)) }.map(\.line))
        }
        #expect(!lines(fetched).isEmpty && lines(fetched).isSubset(of: lines(named)), "\(lines(fetched)) vs \(lines(named))")
        // The file came through libdebuginfod's cache.
        #expect(FileManager.default.fileExists(atPath: "\(cache)/\(buildID)/debuginfo"))
    }

    @Test("a debuginfod server that is down, slow, or serves the wrong file costs a counted miss and nothing else")
    func badServers() throws {
        if Self.skipWithoutDebuginfod() { return }
        let (_, stripped, _, buildID) = try Self.servedBuild()
        let expected = try Self.startNames(of: try Self.builds().unstripped, as: "proportions_stripped")
        // A hostile peer: answers every request slowly, with another ELF file, or with a body past the size limit.
        let hostile = TestSupport.temporaryPath("hostile_debuginfod.py")
        try Self.hostileServer.write(toFile: hostile, atomically: true, encoding: .utf8)
        for mode in ["down", "wrong-build-id", "slow", "huge"] {
            let port = Daemon.freePort()
            var server: Process?
            if mode != "down" {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
                process.arguments = [hostile, String(port), mode, "/bin/ls"]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                server = process
                _ = Daemon.wait(seconds: 10) { Daemon.get("http://127.0.0.1:\(port)/ping") != nil }
            }
            defer { if let server { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() } }
            let cache = TestSupport.temporaryPath("debuginfod-cache-\(UUID().uuidString.prefix(8))")
            let started = Date()
            let (profile, output) = try Self.recordWithDebuginfod(stripped, urls: "http://127.0.0.1:\(port)", cache: cache)
            let seconds = Date().timeIntervalSince(started)
            // Profiling went on and still tells the functions apart by their CFI; no name came from the bad server.
            let shares = RecordTests.selfShares(profile)
            #expect((shares[expected["work_forty"]!] ?? 0) > 20, "\(mode): \(shares.percent.sorted { $0.value > $1.value }.prefix(4))")
            #expect(shares["work_forty"] == nil, "\(mode): a name came from a bad server")
            #expect(output.stderr.contains("warning: debuginfod gave 0 of 1"), "\(mode): \(output.stderr)")
            // Bounded: the workload's ~4 s, plus at most one fetch deadline (10 s) and the wait for it.
            #expect(seconds < 4 + 35, "\(mode): flare record took \(Int(seconds)) s")
            #expect(!FileManager.default.fileExists(atPath: "\(cache)/\(buildID)/debuginfo") || mode == "wrong-build-id", "\(mode)")
            print("debuginfod \(mode): record took \(String(format: "%.1f", seconds)) s")
        }
    }

    /// A peer that speaks HTTP but not honestly: python3 hostile.py PORT MODE FILE.
    static let hostileServer = """
        import http.server, sys, time
        port, mode, other = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def do_GET(self):
                if self.path == "/ping":
                    self.send_response(200); self.end_headers(); return
                if mode == "slow":
                    time.sleep(120); return
                body = open(other, "rb").read() if mode == "wrong-build-id" else None
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)) if body else str(1 << 34))
                self.end_headers()
                if body:
                    self.wfile.write(body)
                else:
                    chunk = b"\\0" * (1 << 20)
                    try:
                        for _ in range(1 << 14): self.wfile.write(chunk)
                    except Exception: pass
        http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """

    @Test("the agent names a stripped process from debuginfod in later windows; the server stopped mid-run costs a counted miss")
    func agentWithDebuginfod() throws {
        if Self.skipWithoutDebuginfod() { return }
        let (_, stripped, directory, buildID) = try Self.servedBuild()
        let server = try DebuginfodServer(serving: directory, buildID: buildID)
        defer { server.stop() }
        let config = TestSupport.temporaryPath("agent-debuginfod.toml")
        let cache = TestSupport.temporaryPath("agent-debuginfod-cache-\(UUID().uuidString.prefix(8))")
        try "[agent]\ndebuginfod_urls = \"\(server.url)\"\ndebuginfod_cache_dir = \"\(cache)\"\ndebuginfod_timeout = \"3s\"\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let fleet = AgentTests.Fleet(window: 1)
        try fleet.startStore()
        try fleet.startAgent(targets: "^proportions_", extra: ["--config", config])
        let first = try AgentTests.launch(stripped, ["3000"])
        defer { first.terminate(); first.waitUntilExit() }
        func top(_ service: String) -> [String] {
            let json = Daemon.json(fleet.storeURL + "/api/v1/top?service=\(service)&from=0&until=now%2B1h&limit=20")
            return (json?["functions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        }
        func service(running binary: String) -> String? { fleet.services().keys.first { binary.hasSuffix($0) || $0.hasPrefix("proportions") } }
        let named = Daemon.wait(seconds: 40) { service(running: stripped).map { top($0).contains("work_forty") } ?? false }
        #expect(named, "no window named work_forty: \(fleet.services().keys.sorted()) \(service(running: stripped).map(top) ?? []) \(fleet.metrics.filter { $0.key.contains("debuginfod") })")
        #expect(fleet.metrics["flare_agent_debuginfod_fetched_total"] == 1)

        // The server goes away; a build it never served is asked for and missed, and the windows keep coming.
        server.stop()
        let second = try TestSupport.compileC("proportions.c", output: "proportions_other", flags: ["-O2", "-g", "-fno-inline"])
        _ = try TestSupport.run("/usr/bin/strip", ["--strip-all", second])
        let windowsBefore = fleet.metrics["flare_agent_windows_total"] ?? 0
        let other = try AgentTests.launch(second, ["600"])
        defer { other.terminate(); other.waitUntilExit() }
        #expect(Daemon.wait(seconds: 30) { (fleet.metrics["flare_agent_debuginfod_misses_total"] ?? 0) >= 1 }, "\(fleet.metrics.filter { $0.key.contains("debuginfod") })")
        #expect(Daemon.wait(seconds: 20) { (fleet.metrics["flare_agent_windows_total"] ?? 0) >= windowsBefore + 3 }, "windows stopped: \(fleet.agent?.log.suffix(2000) ?? "")")
        #expect(fleet.agent?.process.isRunning == true)
    }

    // MARK: Late symbolization in the store

    static func post(_ url: String, file: String) throws -> (status: Int, body: String) {
        let output = try TestSupport.run("/usr/bin/curl", ["-sS", "-w", "\n%{http_code}", "--data-binary", "@" + file, url])
        let lines = output.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n") + output.stderr)
    }

    @Test("the store names a window's unnamed frames once the debug file is uploaded, in queries and in the pprof download")
    func lateSymbolizationInTheStore() throws {
        let (unstripped, stripped, debug) = try Self.builds()
        let buildID = try ElfImage(path: stripped).buildIDHex
        let starts = try Self.startNames(of: unstripped, as: "proportions_stripped")
        let (_, profilePath, _) = try RecordTests.record(["--", stripped, "300"])
        let port = Daemon.freePort()
        let store = try Daemon("store", ["store", "--data-dir", TestSupport.temporaryPath("late-\(UUID().uuidString.prefix(8))"), "--address", "127.0.0.1:\(port)"])
        defer { store.terminate() }
        let url = "http://127.0.0.1:\(port)"
        try #require(Daemon.wait(seconds: 30) { Daemon.get(url + "/health")?.status == 200 }, "\(store.log)")
        let ingested = try Self.post(url + "/api/v1/profiles?service=stripped&window_id=w1", file: profilePath)
        try #require(ingested.status == 200, "\(ingested.body)")

        func top() -> [String: Double] {
            let json = Daemon.json(url + "/api/v1/top?service=stripped&from=0&until=now%2B1h&limit=50")
            var shares: [String: Double] = [:]
            for row in json?["functions"] as? [[String: Any]] ?? [] { shares[row["name"] as? String ?? ""] = row["self"] as? Double ?? -1 }
            return shares
        }
        let before = top()
        for function in Self.functions { #expect(before[starts[function]!] != nil, "\(starts[function]!) not in \(before.keys.sorted())") }
        #expect(before["work_forty"] == nil)

        // Refused: another file's debug info, a truncated file, a malformed build-id; the store is unharmed.
        let other = try Self.post(url + "/api/v1/debuginfo/\(buildID)", file: "/bin/ls")
        #expect(other.status == 400 && other.body.contains("build-id"), "\(other)")
        let truncated = TestSupport.temporaryPath("truncated.debug")
        try Data(try Data(contentsOf: URL(fileURLWithPath: debug)).prefix(300)).write(to: URL(fileURLWithPath: truncated))
        let cut = try Self.post(url + "/api/v1/debuginfo/\(buildID)", file: truncated)
        #expect(cut.status == 400, "\(cut)")
        let malformed = try Self.post(url + "/api/v1/debuginfo/XYZ", file: debug)
        #expect(malformed.status == 400 && malformed.body.contains("build-id"), "\(malformed)")
        #expect(top() == before)

        let uploaded = try Self.post(url + "/api/v1/debuginfo/\(buildID)", file: debug)
        #expect(uploaded.status == 200 && uploaded.body.contains("\"functions_named\""), "\(uploaded)")
        let after = top()
        for function in Self.functions {
            #expect(after[function] == before[starts[function]!], "\(function): \(after[function] ?? -1) named, \(before[starts[function]!] ?? -1) before")
            #expect(after[starts[function]!] == nil, "\(starts[function]!) is still unnamed")
        }

        // The merged pprof download carries the names, with their source file.
        let download = TestSupport.temporaryPath("late.pb.gz")
        let fetched = try TestSupport.run("/usr/bin/curl", ["-fsS", "-o", download, url + "/api/v1/pprof?service=stripped&from=0&until=now%2B1h"])
        try #require(fetched.status == 0, "\(fetched.stderr)")
        let merged = try Profile(pprofFile: [UInt8](Data(contentsOf: URL(fileURLWithPath: download))))
        let names = Dictionary(merged.functions.map { (merged.string($0.name), merged.string($0.filename)) }, uniquingKeysWith: { a, _ in a })
        for function in Self.functions { #expect(names[function]?.hasSuffix("proportions.c") == true, "\(function): \(names[function] ?? "absent")") }

        // A window that arrives after the debug file is named at once.
        let again = try Self.post(url + "/api/v1/profiles?service=stripped&window_id=w2", file: profilePath)
        #expect(again.status == 200, "\(again.body)")
        let twice = top()
        for function in Self.functions { #expect(twice[function] != nil && twice[starts[function]!] == nil, "\(function) in \(twice.keys.sorted())") }
    }

    @Test("a store given debuginfod servers names a window's unnamed frames from them, with no upload")
    func storeAsksDebuginfod() throws {
        if Self.skipWithoutDebuginfod() { return }
        let (unstripped, stripped, directory, buildID) = try Self.servedBuild()
        let starts = try Self.startNames(of: unstripped, as: "proportions_stripped")
        let server = try DebuginfodServer(serving: directory, buildID: buildID)
        defer { server.stop() }
        let (_, profilePath, _) = try RecordTests.record(["--", stripped, "200"])
        let port = Daemon.freePort()
        let data = TestSupport.temporaryPath("late-debuginfod-\(UUID().uuidString.prefix(8))")
        let store = try Daemon("store", ["store", "--data-dir", data, "--address", "127.0.0.1:\(port)"],
                               environment: ["DEBUGINFOD_URLS": server.url, "PATH": "/usr/bin:/bin"])
        defer { store.terminate() }
        let url = "http://127.0.0.1:\(port)"
        try #require(Daemon.wait(seconds: 30) { Daemon.get(url + "/health")?.status == 200 }, "\(store.log)")
        let ingested = try Self.post(url + "/api/v1/profiles?service=stripped&window_id=w1", file: profilePath)
        try #require(ingested.status == 200, "\(ingested.body)")
        func top() -> Set<String> {
            let json = Daemon.json(url + "/api/v1/top?service=stripped&from=0&until=now%2B1h&limit=50")
            return Set((json?["functions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String })
        }
        let named = Daemon.wait(seconds: 30) { top().isSuperset(of: Self.functions) }
        #expect(named, "not named from debuginfod: \(top().sorted()) \(store.log.suffix(1000))")
        #expect(top().isDisjoint(with: Self.functions.map { starts[$0]! }))
        #expect(FileManager.default.fileExists(atPath: data + "/debuginfo/\(buildID).debug"))
    }

    @Test("a missed fetch is asked again once its retry is due, and then found")
    func missedFetchIsRetried() throws {
        if Self.skipWithoutDebuginfod() { return }
        let (_, _, directory, buildID) = try Self.servedBuild()
        let port = Daemon.freePort()
        let settings = DebuginfodFetcher.Settings(urls: "http://127.0.0.1:\(port)", cacheDirectory: TestSupport.temporaryPath("retry-cache-\(UUID().uuidString.prefix(8))"),
                                                  timeoutSeconds: 3, retrySeconds: 2, helper: [TestSupport.flareBinary, "debuginfod-find"])
        let fetcher = DebuginfodFetcher(settings: settings)
        // Nobody listens yet: a miss, and no second try before the retry is due.
        #expect(fetcher.debugFile(buildID: buildID) == nil)
        #expect(fetcher.waitUntilIdle(seconds: 10))
        #expect(fetcher.current.misses == 1 && fetcher.current.fetched == 0, "\(fetcher.current)")
        #expect(fetcher.debugFile(buildID: buildID) == nil && fetcher.pending == 0)
        #expect(!fetcher.retryIsDue(buildID: buildID))

        let server = try DebuginfodServer(serving: directory, buildID: buildID, port: port)
        defer { server.stop() }
        #expect(Daemon.wait(seconds: 5) { fetcher.retryIsDue(buildID: buildID) })
        #expect(fetcher.debugFile(buildID: buildID) == nil)
        #expect(fetcher.waitUntilIdle(seconds: 10))
        #expect(fetcher.takeArrivals() == [buildID])
        let path = try #require(fetcher.debugFile(buildID: buildID))
        #expect(try ElfImage(path: path).buildIDHex == buildID)
        #expect(fetcher.current.fetched == 1)
    }
}

