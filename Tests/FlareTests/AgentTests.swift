import Foundation
import Testing

/// `flare agent` against a real `flare store`: real perf sessions, real
/// processes, real HTTP, a real spool on disk.
@Suite("flare agent", .serialized)
struct AgentTests {
    /// A store and an agent with their own data, spool and ports.
    final class Fleet: @unchecked Sendable {
        let storePort = Daemon.freePort()
        let metricsPort = Daemon.freePort()
        let dataDirectory = TestSupport.temporaryPath("store-\(UUID().uuidString.prefix(8))")
        let spoolDirectory = TestSupport.temporaryPath("spool-\(UUID().uuidString.prefix(8))")
        var store: Daemon?
        var agent: Daemon?
        let window: Double

        init(window: Double = 2) { self.window = window }

        var storeURL: String { "http://127.0.0.1:\(storePort)" }

        func startStore() throws {
            store = try Daemon("store", ["store", "--data-dir", dataDirectory, "--address", "127.0.0.1:\(storePort)"])
            let up = Daemon.wait(seconds: 30) { Daemon.get(storeURL + "/health")?.status == 200 }
            if !up { throw TestFailure("the store did not start: \(store?.log ?? "")") }
        }

        /// Starts the agent shipping to this fleet's store, or to `destinations` when given.
        /// With no --config in `extra` it reads none (not a host's /etc/flare/agent.toml).
        func startAgent(targets: String, destinations: [String]? = nil, extra: [String] = []) throws {
            let config = extra.contains("--config") ? [] : ["--config", ""]
            agent = try Daemon("agent", ["agent"] + config + (destinations ?? ["--store", storeURL]) + ["--window", "\(Int(window))s", "--spool-dir", spoolDirectory,
                                         "--metrics-address", "127.0.0.1:\(metricsPort)", "--process-regex", targets,
                                         "--call-graph", "fp", "--host-name", "test-host"] + extra,
                             environment: ["FLARE_AGENT_LOG_LEVEL": "debug", "PATH": "/usr/bin:/bin"])
            let up = Daemon.wait(seconds: 30) { Daemon.get("http://127.0.0.1:\(metricsPort)/health")?.status == 200 }
            if !up { throw TestFailure("the agent did not start: \(agent?.log ?? "")") }
        }

        var metrics: [String: Double] {
            Daemon.get("http://127.0.0.1:\(metricsPort)/metrics").map { prometheusValues(String(decoding: $0.body, as: UTF8.self)) } ?? [:]
        }

        func services() -> [String: [String: Any]] {
            let list = Daemon.json(storeURL + "/api/v1/services")?["services"] as? [[String: Any]] ?? []
            return Dictionary(list.compactMap { s in (s["name"] as? String).map { ($0, s) } }, uniquingKeysWith: { a, _ in a })
        }

        /// Samples stored for a service over all time.
        func storedSamples(_ service: String) -> Int {
            let json = Daemon.json(storeURL + "/api/v1/flamegraph?service=\(service)&from=0&until=now%2B1h&max_nodes=1")
            return json?["samples"] as? Int ?? 0
        }

        /// Window ids and sample counts the agent logged as spooled.
        func spooledWindows(log: String) -> [String: (service: String, samples: Int)] {
            var windows: [String: (String, Int)] = [:]
            for line in log.split(separator: "\n") where line.contains("window spooled") {
                func field(_ name: String) -> String? {
                    guard let range = line.range(of: name + "=") else { return nil }
                    return String(line[range.upperBound...].prefix { $0 != " " })
                }
                if let id = field("window_id"), let service = field("service"), let samples = field("samples").flatMap({ Int($0) }) {
                    windows[id] = (service, samples)
                }
            }
            return windows
        }

        func pendingSpoolFiles() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: spoolDirectory + "/store")) ?? []).filter { $0.hasSuffix(".window") }.count
        }
    }

    static func burner(_ name: String) throws -> String {
        try TestSupport.compileC("agent_burn.c", output: name)
    }

    static func launch(_ binary: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test("three workloads reach the store within two windows, under their service names, with span labels")
    func threeWorkloads() throws {
        let alpha = try Self.burner("agent_alpha")
        let beta = try Self.burner("agent_beta")
        let spans = try TestSupport.compileC("spans.c", flags: ["-O0", "-fno-omit-frame-pointer", "-I", TestSupport.packageRoot.appendingPathComponent("clients/c").path])
        let fleet = Fleet(window: 2)
        try fleet.startStore()
        try fleet.startAgent(targets: "^(agent_alpha|agent_beta|spans)$")
        let started = Date()
        let workloads = [try Self.launch(alpha, ["8"]), try Self.launch(beta, ["8"]), try Self.launch(spans, ["100", "8000"])]
        defer { workloads.forEach { if $0.isRunning { $0.terminate() } } }

        // Two windows, plus the upload: every service is there.
        let arrived = Daemon.wait(seconds: 2 * fleet.window + 3) {
            let names = Set(fleet.services().keys)
            return names.isSuperset(of: ["agent_alpha", "agent_beta", "ground-truth-c"])
        }
        #expect(arrived, "services after \(Date().timeIntervalSince(started)) s: \(fleet.services().keys.sorted()); agent log:\n\(fleet.agent?.log.suffix(3000) ?? "")")
        workloads.forEach { $0.waitUntilExit() }
        Daemon.wait(seconds: 3 * fleet.window) { fleet.metrics["flare_agent_spool_bytes"] == 0 }

        // Each profile holds its own program's code.
        for service in ["agent_alpha", "agent_beta"] {
            let top = Daemon.json(fleet.storeURL + "/api/v1/top?service=\(service)&from=0&limit=5")
            let names = (top?["functions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(names.first == "burn_here", "\(service): \(names)")
        }
        // The span workload's resource names the service and its version; the host is labelled.
        let versions = Daemon.json(fleet.storeURL + "/api/v1/labels/service.version/values?service=ground-truth-c&from=0")
        #expect(versions?["values"] as? [String] == ["1.0"], "\(String(describing: versions))")
        let hosts = Daemon.json(fleet.storeURL + "/api/v1/labels/host.name/values?service=agent_alpha&from=0")
        #expect(hosts?["values"] as? [String] == ["test-host"], "\(String(describing: hosts))")

        // Span labels: the spans that spent CPU in span_work_K are span K's
        // (the workload encodes K in its span ids), and there are some.
        var checked = 0
        for k in [1, 4, 7] {
            let answer = Daemon.json(fleet.storeURL + "/api/v1/functions/spans?service=ground-truth-c&function=span_work_\(k)&from=0&limit=1000")
            let rows = answer?["spans"] as? [[String: Any]] ?? []
            for row in rows where (row["self"] as? Int ?? 0) > 0 {
                guard let hex = row["span_id"] as? String, let span = UInt64(hex, radix: 16) else { continue }
                #expect(span >> 56 == 0x5A && (span >> 32) & 0xff == UInt64(k), "span_work_\(k) charged to span \(hex)")
                #expect((row["trace_id"] as? String)?.hasSuffix(hex) == true, "\(row)")
                checked += 1
            }
        }
        #expect(checked >= 5, "too few span-labelled samples reached the store: \(checked)")
        let metrics = fleet.metrics
        #expect((metrics["flare_agent_labelled_samples_total"] ?? 0) > 0, "\(metrics)")

        // SIGTERM: the agent flushes and exits within 5 s.
        let (status, seconds) = fleet.agent!.terminate()
        #expect(status == 0 && seconds < 5, "agent exit \(status) after \(seconds) s")
        fleet.store?.terminate()
    }

    /// The cgroup v2 hierarchy's mount point: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host.
    static func cgroup2Mount() -> String? {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return nil }
        let fields = mounts.split(separator: "\n").map { $0.split(separator: " ") }
        return fields.first { $0.count > 2 && $0[2] == "cgroup2" }.map { String($0[1]) }
    }

    @Test("targets narrow what is profiled (pids, cgroup, exclusions); windows go to a Pyroscope-compatible server instead of the store")
    func targetsAndPyroscope() throws {
        guard let hierarchy = Self.cgroup2Mount(), access(hierarchy, W_OK) == 0 else {
            print("SKIPPED targets and Pyroscope shipping: this host has no writable cgroup v2 hierarchy to build a container cgroup in")
            return
        }
        // A cgroup named as Docker names a container's, below a parent the agent is told to profile.
        let containerID = (UUID().uuidString + UUID().uuidString).replacingOccurrences(of: "-", with: "").lowercased()
        let parent = "/flare-test-\(containerID.prefix(8))"
        let container = parent + "/docker-\(containerID).scope"
        try FileManager.default.createDirectory(atPath: hierarchy + container, withIntermediateDirectories: true)
        defer { rmdir(hierarchy + container); rmdir(hierarchy + parent) }

        let names = ["agent_gamma", "agent_delta", "agent_epsilon", "agent_zeta"]
        var workloads: [String: Process] = [:]
        for name in names { workloads[name] = try Self.launch(try Self.burner(name), ["15"]) }
        defer { workloads.values.forEach { if $0.isRunning { $0.terminate() }; $0.waitUntilExit() } }
        func pid(_ name: String) -> Int32 { workloads[name]!.processIdentifier }
        // gamma: listed, in the container, not excluded: the only one profiled.
        // delta: listed, outside the container. epsilon: listed and inside, but excluded. zeta: inside, not listed.
        let procs = try #require(FileHandle(forWritingAtPath: hierarchy + container + "/cgroup.procs"))
        for name in ["agent_gamma", "agent_epsilon", "agent_zeta"] { try procs.write(contentsOf: Data("\(pid(name))\n".utf8)) }
        try procs.close()

        let fleet = Fleet(window: 2)
        try fleet.startStore()
        let listed = ["agent_gamma", "agent_delta", "agent_epsilon"].flatMap { ["--pid", "\(pid($0))"] }
        try fleet.startAgent(targets: "^agent_(gamma|delta|epsilon|zeta)$", destinations: ["--store", "", "--pyroscope", fleet.storeURL],
                             extra: listed + ["--cgroup", parent, "--exclude", "^agent_eps"])
        let arrived = Daemon.wait(seconds: 2 * fleet.window + 5) { fleet.services()["agent_gamma"] != nil }
        #expect(arrived, "services: \(fleet.services().keys.sorted()); agent log:\n\(fleet.agent?.log.suffix(3000) ?? "")")
        // Two more windows: a process wrongly included would have arrived by now too.
        sleep(UInt32(2 * fleet.window))
        let profiled = Set(fleet.services().keys.filter { names.contains($0) })
        #expect(profiled == ["agent_gamma"], "profiled: \(profiled.sorted())")

        let top = Daemon.json(fleet.storeURL + "/api/v1/top?service=agent_gamma&from=0&limit=5")
        #expect((top?["functions"] as? [[String: Any]])?.first?["name"] as? String == "burn_here", "\(String(describing: top))")
        // Pyroscope validates label names as Prometheus does: container.id arrives as container_id.
        let ids = Daemon.json(fleet.storeURL + "/api/v1/labels/container_id/values?service=agent_gamma&from=0")
        #expect(ids?["values"] as? [String] == [containerID], "\(String(describing: ids))")
        let hosts = Daemon.json(fleet.storeURL + "/api/v1/labels/host_name/values?service=agent_gamma&from=0")
        #expect(hosts?["values"] as? [String] == ["test-host"], "\(String(describing: hosts))")
        #expect(fleet.agent!.terminate().status == 0)
        fleet.store?.terminate()
    }

    @Test("the store down for 60 s: every window is delivered exactly once")
    func storeOutage() throws {
        let binary = try Self.burner("agent_outage")
        let fleet = Fleet(window: 2)
        try fleet.startStore()
        try fleet.startAgent(targets: "^agent_outage$")
        let workload = try Self.launch(binary, ["80"])
        defer { if workload.isRunning { workload.terminate() } }
        Daemon.wait(seconds: 10) { fleet.services()["agent_outage"] != nil }

        #expect(fleet.store!.terminate().status == 0)
        sleep(60)
        let pendingDuringOutage = fleet.pendingSpoolFiles()
        #expect(pendingDuringOutage >= 20, "windows spooled during the outage: \(pendingDuringOutage)")
        #expect((fleet.metrics["flare_agent_upload_errors_total"] ?? 0) > 0)
        try fleet.startStore()
        workload.waitUntilExit()
        let drained = Daemon.wait(seconds: 60) { fleet.pendingSpoolFiles() == 0 }
        #expect(drained, "spool still holds \(fleet.pendingSpoolFiles()) windows")
        let (status, _) = fleet.agent!.terminate()
        #expect(status == 0)
        #expect(fleet.pendingSpoolFiles() == 0)

        let spooled = fleet.spooledWindows(log: fleet.agent!.log).filter { $0.value.service == "agent_outage" }
        let stored = fleet.services()["agent_outage"]?["windows"] as? Int ?? -1
        let spooledSamples = spooled.values.reduce(0) { $0 + $1.samples }
        #expect(spooled.count >= 30, "windows spooled: \(spooled.count)")
        #expect(stored == spooled.count, "stored \(stored) windows, the agent spooled \(spooled.count)")
        #expect(fleet.storedSamples("agent_outage") == spooledSamples, "samples stored \(fleet.storedSamples("agent_outage")), spooled \(spooledSamples)")
        fleet.store?.terminate()
    }

    @Test("kill -9 of the agent: spooled windows are delivered after a restart; corrupt spool files are set aside")
    func killAndRestart() throws {
        let binary = try Self.burner("agent_killed")
        let fleet = Fleet(window: 1)
        // No store yet: windows pile up in the spool.
        try fleet.startAgent(targets: "^agent_killed$")
        let workload = try Self.launch(binary, ["6"])
        workload.waitUntilExit()
        Daemon.wait(seconds: 5) { fleet.pendingSpoolFiles() >= 4 }
        fleet.agent!.kill9()
        let firstRun = fleet.spooledWindows(log: fleet.agent!.log).filter { $0.value.service == "agent_killed" }
        let pending = fleet.pendingSpoolFiles()
        #expect(pending >= 4 && pending == firstRun.count, "spool files \(pending), windows logged \(firstRun.count)")

        // One truncated copy of a real window and one file of garbage.
        let dir = fleet.spoolDirectory + "/store"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".window") }.sorted()
        let real = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + files[0]))
        try real.prefix(real.count / 2).write(to: URL(fileURLWithPath: dir + "/00000000000000000000.window"))
        try Data("not a window at all".utf8).write(to: URL(fileURLWithPath: dir + "/00000000000000999999.window"))

        try fleet.startStore()
        try fleet.startAgent(targets: "^agent_killed$")
        let drained = Daemon.wait(seconds: 30) { fleet.pendingSpoolFiles() == 0 }
        #expect(drained, "spool still holds \(fleet.pendingSpoolFiles()) windows; log:\n\(fleet.agent!.log.suffix(2000))")
        let stored = fleet.services()["agent_killed"]?["windows"] as? Int ?? -1
        #expect(stored == firstRun.count, "stored \(stored), spooled before the kill \(firstRun.count)")
        #expect(fleet.storedSamples("agent_killed") == firstRun.values.reduce(0) { $0 + $1.samples })
        let aside = (try? FileManager.default.contentsOfDirectory(atPath: fleet.spoolDirectory + "/set-aside")) ?? []
        #expect(aside.count == 2, "set aside: \(aside)")
        #expect(fleet.agent!.log.contains("set aside"), "no warning in the log")
        #expect(fleet.agent!.process.isRunning, "the agent stopped: \(fleet.agent!.log.suffix(2000))")
        #expect((fleet.metrics["flare_agent_spool_set_aside_total"] ?? 0) == 2)
        fleet.agent!.terminate()
        fleet.store?.terminate()
    }

    @Test("1 000 short-lived processes: their samples land under their name, and memory stays within the bound")
    func shortLivedProcesses() throws {
        // A name of this run's own: the agent profiles the whole machine, and
        // another run's short-lived processes must not count as these.
        let name = "shortlived" + String(UInt16.random(in: 0...UInt16.max), radix: 16)
        let binary = try TestSupport.compileC("shortlived.c", output: name)
        let memoryLimit = 192 << 20
        let fleet = Fleet(window: 2)
        try fleet.startStore()
        try fleet.startAgent(targets: "^\(name)$", extra: ["--label", "suite=agent"])
        let run = try TestSupport.run(binary, ["1000", "15", "2"])
        #expect(run.status == 0)
        let childCPU = Double(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        Daemon.wait(seconds: 3 * fleet.window + 5) { fleet.metrics["flare_agent_spool_bytes"] == 0 && fleet.pendingSpoolFiles() == 0 }
        let metrics = fleet.metrics
        fleet.agent!.terminate()

        // The children's CPU time at 99 Hz, against what the store holds.
        let expected = childCPU * 99
        let stored = Double(fleet.storedSamples(name))
        #expect(expected > 500, "the workload burned too little CPU: \(childCPU) s")
        #expect(abs(stored - expected) / expected < 0.2, "stored \(stored) samples, expected about \(expected) from \(childCPU) s of CPU")
        // No sample of short_burn under any other name.
        for service in fleet.services().keys where service != name {
            let top = Daemon.json(fleet.storeURL + "/api/v1/top?service=\(service)&from=0&limit=100000&by=total")
            let names = (top?["functions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(!names.contains("short_burn"), "short_burn stored under \(service)")
        }
        // Exited processes are forgotten; memory stays bounded.
        #expect((metrics["flare_agent_tracked_processes"] ?? 1e9) < 100, "\(metrics)")
        let peak = metrics["flare_agent_peak_resident_bytes"] ?? 1e12
        #expect(peak <= Double(memoryLimit), "peak RSS \(peak / 1048576) MiB")
        let heap = metrics["flare_agent_heap_bytes"] ?? -1
        #expect(heap > 0 && heap < metrics["flare_agent_resident_bytes"] ?? 0, "heap \(heap) of \(metrics)")
        print("agent after 1000 processes: peak RSS \(Int(peak / 1048576)) MiB, heap \(Int(heap / 1048576)) MiB, tracked processes \(Int(metrics["flare_agent_tracked_processes"] ?? -1)), stored \(Int(stored)) of \(Int(expected)) expected samples")
        fleet.store?.terminate()
    }

    @Test("bad configuration: an error naming the key or file, and a non-zero exit", arguments: [
        (["agent", "--config", "CONFIG:unknown"], "sampling.frequncy"),
        (["agent", "--store", "ftp://nowhere"], "shipping.store_url"),
        (["agent", "--config", "/nonexistent/agent.toml"], "/nonexistent/agent.toml"),
        (["agent", "--config", "CONFIG:negative"], "sampling.frequency"),
        (["agent", "-F", "-5"], "sampling.frequency"),
        (["agent", "--config", "CONFIG:syntax"], "line 2"),
        (["agent", "--window", "0s"], "window.length"),
    ])
    func badConfiguration(arguments: [String], mention: String) throws {
        let files = [
            "unknown": "[sampling]\nfrequncy = 99\n",
            "negative": "[sampling]\nfrequency = -5\n",
            "syntax": "[sampling]\nfrequency = = 3\n",
        ]
        let resolved = try arguments.map { argument -> String in
            guard argument.hasPrefix("CONFIG:") else { return argument }
            let path = TestSupport.temporaryPath("agent-\(argument.dropFirst(7)).toml")
            try files[String(argument.dropFirst(7))]!.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let output = try TestSupport.flare(resolved + ["--print-config"])
        #expect(output.status != 0, "\(resolved) exited 0: \(output.stdout)")
        #expect(output.stderr.contains(mention), "\(resolved): \(output.stderr)")
        #expect(output.stderr.split(separator: "\n").count <= 2, "\(output.stderr)")
    }

    @Test("the configuration file, environment and flags combine in that order")
    func configurationPrecedence() throws {
        let path = TestSupport.temporaryPath("agent-layers.toml")
        try """
            [sampling]
            frequency = 49
            call_graph = "fp"
            [window]
            length = "30s"
            [agent.labels]
            team = "core"
            """.write(toFile: path, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["FLARE_SAMPLING_FREQUENCY"] = "199"
        environment["FLARE_WINDOW_LENGTH"] = "20s"
        let output = try TestSupport.run(TestSupport.flareBinary, ["agent", "--config", path, "--window", "5s", "--print-config"], environment: environment)
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("sampling.frequency = 199"))
        #expect(output.stdout.contains("sampling.call_graph = fp"))
        #expect(output.stdout.contains("window.length = 5s"))
        #expect(output.stdout.contains("agent.labels = {team = \"core\"}"))
    }

    @Test("flare store and flare agent start with no arguments on their embedded defaults")
    func embeddedDefaults() throws {
        guard Daemon.get("http://127.0.0.1:4100/health") == nil, Daemon.get("http://127.0.0.1:4101/metrics") == nil else {
            print("SKIP: ports 4100/4101 are taken, so the no-argument defaults cannot be tried here")
            return
        }
        let store = try Daemon("store-defaults", ["store"])
        #expect(Daemon.wait(seconds: 30) { Daemon.get("http://127.0.0.1:4100/health")?.status == 200 }, "\(store.log)")
        let binary = try Self.burner("agent_defaults")
        // Only the workload, through the environment: a debug build would
        // otherwise spend the test symbolizing the (large) test runner.
        var environment = ProcessInfo.processInfo.environment
        environment["FLARE_TARGETS_PROCESS_REGEX"] = "^agent_defaults$"
        let agent = try Daemon("agent-defaults", ["agent"], environment: environment)
        #expect(Daemon.wait(seconds: 30) { Daemon.get("http://127.0.0.1:4101/metrics")?.status == 200 }, "\(agent.log)")
        let workload = try Self.launch(binary, ["3"])
        workload.waitUntilExit()
        // SIGTERM flushes the open (10 s) window: the workload arrives without waiting for it to end.
        let (status, seconds) = agent.terminate()
        #expect(status == 0 && seconds < 5, "agent exit \(status) after \(seconds) s: \(agent.log.suffix(2000))")
        let services = Daemon.json("http://127.0.0.1:4100/api/v1/services")?["services"] as? [[String: Any]] ?? []
        #expect(services.contains { $0["name"] as? String == "agent_defaults" }, "\(services.compactMap { $0["name"] })")
        // The store shuts down gracefully on SIGTERM too.
        let stopped = store.terminate()
        #expect(stopped.status == 0, "store exit \(stopped)")
        #expect(Daemon.get("http://127.0.0.1:4100/health") == nil)
    }
}

@Suite("deploy files")
struct DeployTests {
    @Test("the systemd units pass systemd-analyze verify")
    func systemdUnits() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            print("SKIP: systemd-analyze is not installed (scripts/install-deps installs systemd)")
            return
        }
        var units: [String] = []
        for name in ["flare-agent.service", "flare-store.service"] {
            // The unit names /usr/bin/flare; verify it against the binary just built.
            let text = try String(contentsOf: TestSupport.packageRoot.appendingPathComponent("deploy/systemd/\(name)"), encoding: .utf8)
            let path = TestSupport.temporaryPath(name)
            try text.replacingOccurrences(of: "/usr/bin/flare", with: TestSupport.flareBinary).write(toFile: path, atomically: true, encoding: .utf8)
            units.append(path)
        }
        let output = try TestSupport.run("/usr/bin/systemd-analyze", ["verify"] + units)
        #expect(output.status == 0 && output.stderr.isEmpty, "\(output.stderr)")
    }

    @Test("flare --version names VERSION and the commit the checkout's HEAD is")
    func version() throws {
        let output = try TestSupport.flare(["--version"])
        #expect(output.status == 0, "\(output.stderr)")
        let version = try String(contentsOf: TestSupport.packageRoot.appendingPathComponent("VERSION"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let head = try TestSupport.run("/usr/bin/git", ["-C", TestSupport.packageRoot.path, "rev-parse", "HEAD"])
        let commit = head.status == 0 ? head.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : "unknown"
        // The binary was built from this checkout: a commit made since the build is not in it.
        #expect(output.stdout.hasPrefix("flare \(version) (commit "), "\(output.stdout)")
        #expect(output.stdout.contains(commit), "built from another commit than HEAD \(commit): \(output.stdout)")
    }

    @Test("the example agent configuration loads")
    func exampleConfiguration() throws {
        let output = try TestSupport.flare(["agent", "--config", TestSupport.packageRoot.appendingPathComponent("deploy/agent.toml").path, "--print-config"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("shipping.spool_max_bytes = 268435456"))
    }
}

extension AgentTests {
    @Test("SIGHUP reloads the configuration file; a bad file is rejected and the running configuration stays")
    func reloadOnSIGHUP() throws {
        let first = try Self.burner("agent_hup_a")
        let second = try Self.burner("agent_hup_b")
        let config = TestSupport.temporaryPath("agent-hup.toml")
        try "[targets]\nprocess_regex = \"^agent_hup_a$\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let fleet = Fleet(window: 1)
        try fleet.startStore()
        fleet.agent = try Daemon("agent", ["agent", "--config", config, "--store", fleet.storeURL, "--window", "1s", "--spool-dir", fleet.spoolDirectory,
                                           "--metrics-address", "127.0.0.1:\(fleet.metricsPort)", "--call-graph", "fp"])
        #expect(Daemon.wait(seconds: 30) { Daemon.get("http://127.0.0.1:\(fleet.metricsPort)/health")?.status == 200 })

        try "[targets]\nprocess_regex = \"^agent_hup_b$\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(fleet.agent!.pid, SIGHUP)
        #expect(Daemon.wait(seconds: 10) { fleet.metrics["flare_agent_config_reloads_total"] == 1 })
        let workloads = [try Self.launch(first, ["3"]), try Self.launch(second, ["3"])]
        workloads.forEach { $0.waitUntilExit() }
        Daemon.wait(seconds: 5) { fleet.services()["agent_hup_b"] != nil }
        #expect(fleet.services()["agent_hup_b"] != nil, "\(fleet.services().keys.sorted())")
        #expect(fleet.services()["agent_hup_a"] == nil, "the old target is still profiled")

        try "[targets]\nprocess_regexp = \"x\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(fleet.agent!.pid, SIGHUP)
        #expect(Daemon.wait(seconds: 10) { fleet.metrics["flare_agent_config_reload_errors_total"] == 1 })
        #expect(fleet.agent!.process.isRunning)
        #expect(fleet.agent!.log.contains("process_regexp"), "\(fleet.agent!.log.suffix(1500))")
        fleet.agent!.terminate()
        fleet.store?.terminate()
    }
}
