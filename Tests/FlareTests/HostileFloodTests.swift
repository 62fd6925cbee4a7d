import Foundation
import Testing

/// Floods an unprivileged process can aim at the whole-host agent
/// (docs/security.md): tens of thousands of threads, 100 000 executable
/// mappings, thousands of processes a second, names of control characters.
/// Each runs for real as `nobody` beside an ordinary workload under a live
/// `flare agent` shipping to a real store: the agent stays within its CPU and
/// memory bounds, counts what it turned away, and the ordinary workload keeps
/// every sample its CPU time asks for.
@Suite("hostile floods", .serialized)
struct HostileFloodTests {
    typealias Fleet = AgentTests.Fleet

    /// What the agent did while one flood ran.
    struct Outcome {
        let fleet: Fleet
        let metrics: [String: Double]
        /// The agent's CPU seconds over the flood's wall seconds.
        let agentCores: Double
        /// Largest `flare_agent_tracked_processes_peak` seen while the flood ran.
        let mostTrackedProcesses: Double
        let attackOutput: String
        let attackPid: Int32
    }

    /// Sets kernel limits for the flood (root's choice for the host, which
    /// the attacker then uses) and puts the old values back afterwards.
    static func withSysctls<T>(_ values: [String: String], _ body: () throws -> T) throws -> T {
        var old: [String: String] = [:]
        for (key, value) in values {
            let path = "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/")
            old[path] = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            try value.write(toFile: path, atomically: false, encoding: .utf8)
            print("flood: \(key) = \(value) for this test (was \(old[path]!))")
        }
        defer { for (path, value) in old { try? value.write(toFile: path, atomically: false, encoding: .utf8) } }
        return try body()
    }

    /// Runs the processes `attack` starts (as nobody) while the agent
    /// profiles the whole machine and an ordinary workload burns beside them,
    /// until they exit or, given `seconds`, for that long; checks what every
    /// attack must leave intact, then `check` checks the attack's own, while
    /// the agent and the store still run.
    static func underAttack(_ label: String, seconds: Double? = nil, attack: () throws -> [Process],
                            check: (Outcome) throws -> Void) throws {
        // The ordinary workload: a name of this run's own, since other runs' agents may share the machine.
        let victimName = "flood_victim" + String(UInt8.random(in: 0...255), radix: 16)
        let victim = try AgentTests.burner(victimName)
        let fleet = Fleet(window: 2)
        try fleet.startStore()
        try fleet.startAgent(targets: ".")
        defer {
            fleet.agent?.terminate()
            fleet.store?.terminate()
        }
        let work = try AgentTests.launch(victim, ["300"])
        defer { HostileTargetTests.stop(work) }
        let victimCPUBefore = HostileTargetTests.cpuSeconds(work.processIdentifier)

        let started = Date()
        let agentCPUBefore = fleet.metrics["flare_agent_cpu_seconds_total"] ?? 0
        let windowsBefore = fleet.metrics["flare_agent_windows_total"] ?? 0
        let attackers = try attack()
        defer { attackers.filter(\.isRunning).forEach(HostileTargetTests.stop) }
        // Watch the agent while the attack runs.
        var mostTracked = 0.0
        let ended = Daemon.wait(seconds: seconds ?? 120) {
            mostTracked = max(mostTracked, fleet.metrics["flare_agent_tracked_processes_peak"] ?? 0)
            return seconds == nil && !attackers.contains(where: \.isRunning)
        }
        let wall = Date().timeIntervalSince(started)
        #expect(seconds != nil || ended, "the \(label) attack did not end within 120 s")
        let windowsDuring = (fleet.metrics["flare_agent_windows_total"] ?? 0) - windowsBefore
        attackers.filter(\.isRunning).forEach(HostileTargetTests.stop)
        let agentCPU = (fleet.metrics["flare_agent_cpu_seconds_total"] ?? 0) - agentCPUBefore
        let victimCPU = HostileTargetTests.cpuSeconds(work.processIdentifier) - victimCPUBefore
        HostileTargetTests.stop(work)

        // Windows kept coming; once the window holding the victim's last
        // samples is cut and shipped, its samples match its CPU time at 99 Hz.
        #expect(windowsDuring >= (wall / fleet.window).rounded(.down) - 1, "\(label): \(windowsDuring) windows in \(wall) s")
        usleep(UInt32((fleet.window + 1) * 1_000_000))
        Daemon.wait(seconds: 3 * fleet.window + 10) { fleet.metrics["flare_agent_spool_bytes"] == 0 && fleet.pendingSpoolFiles() == 0 }
        let metrics = fleet.metrics
        let stored = Double(fleet.storedSamples(victimName))
        let expected = victimCPU * 99
        #expect(expected > 100 && abs(stored - expected) <= 0.25 * expected + 20,
                "\(label): the ordinary workload has \(stored) samples for \(victimCPU) s of CPU")
        let cores = agentCPU / wall
        let peak = metrics["flare_agent_peak_resident_bytes"] ?? 1e12
        print("\(label): \(String(format: "%.1f", wall)) s, agent CPU \(String(format: "%.2f", agentCPU)) s (\(String(format: "%.1f", cores * 100)) % of a core), peak RSS \(Int(peak / 1_048_576)) MiB, most tracked processes \(Int(mostTracked)), \(Int(windowsDuring)) windows, victim \(Int(stored)) of \(Int(expected)) samples, lost records \(Int(metrics["flare_agent_lost_samples_total"] ?? -1))")
        // Bounds: agent.memory_limit (128 MiB by default), and no core spent on the attack.
        #expect(peak <= 128 * 1_048_576, "\(label): peak RSS \(peak / 1_048_576) MiB")
        #expect(cores < 0.5, "\(label): the agent used \(agentCPU) s of CPU in \(wall) s")
        #expect(fleet.agent!.process.isRunning, "the agent stopped: \(fleet.agent!.log.suffix(2000))")
        try check(Outcome(fleet: fleet, metrics: metrics, agentCores: cores, mostTrackedProcesses: mostTracked,
                          attackOutput: "", attackPid: attackers.first?.processIdentifier ?? 0))
    }

    /// `flood.c` as nobody with `arguments`, under `underAttack`; the outcome
    /// carries what it printed.
    static func underFlood(_ arguments: [String], check: (Outcome) throws -> Void) throws {
        let flood = try TestSupport.compileC("flood.c", flags: ["-O2"])
        let output = LockedText()
        var reader: Thread?
        try underAttack("flood " + arguments.joined(separator: " "), attack: {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: HostileTargetTests.asNobody[0])
            process.arguments = Array(HostileTargetTests.asNobody.dropFirst()) + [flood] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            reader = Thread { output.append(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)) }
            reader?.start()
            return [process]
        }) { outcome in
            while !output.text.contains("ready") && reader?.isExecuting == true { usleep(10_000) }
            #expect(output.text.contains("ready"), "the flood \(arguments) never got going: \(output.text)")
            try check(Outcome(fleet: outcome.fleet, metrics: outcome.metrics, agentCores: outcome.agentCores,
                              mostTrackedProcesses: outcome.mostTrackedProcesses, attackOutput: output.text, attackPid: outcome.attackPid))
        }
    }

    final class LockedText: @unchecked Sendable {
        private let lock = NSLock()
        private var value = ""
        var text: String { lock.withLock { value } }
        func append(_ more: String) { lock.withLock { value += more } }
    }

    @Test("about 95 000 threads in one process: thread names beyond the limit are counted, not held")
    func threadFlood() throws {
        // pid_max is 32 768 on a small host; nobody's RLIMIT_NPROC (96 368
        // here, and not raisable without CAP_SYS_RESOURCE) caps the threads.
        try Self.withSysctls(["kernel.pid_max": "4194304"]) {
            try Self.underFlood(["threads", "95000", "4"]) { outcome in
                let started = outcome.attackOutput.split(separator: "\n").first { $0.hasPrefix("threads ") }.flatMap { Int($0.dropFirst(8)) } ?? 0
                print("thread flood: \(started) threads")
                #expect(started >= 20_000, "only \(started) threads: nobody's RLIMIT_NPROC is too low for this flood")
                let dropped = outcome.metrics["flare_agent_dropped_thread_names_total"] ?? 0
                #expect(dropped > 0, "no thread name was turned away: \(outcome.metrics)")
            }
        }
    }

    @Test("100 000 executable mappings in one process: mappings beyond the limit are counted, the process is still profiled")
    func mappingFlood() throws {
        try Self.withSysctls(["vm.max_map_count": "262144"]) {
            try Self.underFlood(["maps", "100000", "6"]) { outcome in
                #expect((outcome.metrics["flare_agent_dropped_mappings_total"] ?? 0) > 0, "no mapping was turned away: \(outcome.metrics)")
                // Its own burn function is named: the mappings it holds are the right ones.
                let top = Daemon.json(outcome.fleet.storeURL + "/api/v1/top?service=flood&from=0&limit=20")
                let names = (top?["functions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                #expect(names.contains("flood_burn"), "the flooding process's profile: \(names)")
            }
        }
    }

    @Test("thousands of processes a second forking and exiting: exited ones are forgotten at the next drain")
    func forkFlood() throws {
        let seconds = 8.0
        try Self.underFlood(["forks", String(seconds)]) { outcome in
            let forks = outcome.attackOutput.split(separator: "\n").first { $0.hasPrefix("forks ") }.flatMap { Double($0.dropFirst(6)) } ?? 0
            print("fork flood: \(Int(forks / seconds)) processes a second")
            #expect(forks / seconds >= 2000, "the flood forked only \(forks) processes in \(seconds) s")
            // Held until the cut, a window's exits would be forks/s × window
            // (16 000 at 8 000 a second); forgotten at each drain, only the
            // few that were sampled stay.
            let bound = forks / seconds * outcome.fleet.window / 4
            #expect(outcome.mostTrackedProcesses > 0 && outcome.mostTrackedProcesses < bound,
                    "the agent held \(outcome.mostTrackedProcesses) processes at once (bound \(bound))")
        }
    }

    @Test("names of about 4 KB of control characters: shipped and logged escaped, the process still profiled")
    func controlCharacterNames() throws {
        func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) }
        try Self.underFlood(["names", "5"]) { outcome in
            defer { _ = try? TestSupport.run("/bin/rm", ["-rf", "/tmp/flare-flood-names-\(outcome.attackPid)"]) }
            let services = outcome.fleet.services().keys
            for service in services {
                #expect(!service.unicodeScalars.contains(where: isControl), "a service name with control characters: \(service.debugDescription)")
            }
            // The flooding process arrives under its executable's name, escaped
            // ("?[31m??????" and so on) and cut to a file name's length.
            let escaped = Set("?[31m2J")
            let hostile = services.filter { !$0.isEmpty && $0.allSatisfy(escaped.contains) }
            #expect(hostile.count == 1, "services: \(services.sorted())")
            if let name = hostile.first, let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) {
                #expect(name.count <= 255)
                #expect(outcome.fleet.storedSamples(encoded) > 100, "\(name): \(outcome.fleet.storedSamples(encoded)) samples")
            }
            let log = outcome.fleet.agent!.log
            #expect(!log.unicodeScalars.contains { isControl($0) && $0 != "\n" && $0 != "\t" }, "control characters in the agent's log")
        }
    }

    @Test("the live agent beside every hostile perf map at once: windows keep coming, nothing of the secret is stored, logged or exported")
    func hostilePerfMapsUnderTheLiveAgent() throws {
        let secret = try HostileTargetTests.Secret()
        defer { secret.remove() }
        let planted: [HostileTargetTests.PlantedMap] = [.fifo, .symlinkToSecret, .devZero, .symlinkLoop, .writableByOthers]
        var pids: [Int32] = []
        defer { for pid in pids { unlink("/tmp/perf-\(pid).map") } }
        try Self.underAttack("perf maps", seconds: 8, attack: {
            try planted.map { kind in
                let (jit, pid, address) = try HostileTargetTests.startJIT()
                pids.append(pid)
                try HostileTargetTests.plant(kind, pid: pid, address: address, secret: secret)
                return jit
            }
        }) { outcome in
            #expect((outcome.metrics["flare_agent_perf_maps_refused_total"] ?? 0) >= Double(planted.count), "\(outcome.metrics)")
            for service in outcome.fleet.services().keys {
                let encoded = service.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? service
                let top = Daemon.get(outcome.fleet.storeURL + "/api/v1/top?service=\(encoded)&from=0&limit=100000")
                let body = top.map { String(decoding: $0.body, as: UTF8.self) } ?? ""
                #expect(!body.contains(secret.token), "the secret reached the store under \(service)")
            }
            let jitTop = Daemon.json(outcome.fleet.storeURL + "/api/v1/top?service=jit&from=0&limit=100")
            let jitFunctions = jitTop?["functions"] as? [[String: Any]] ?? []
            #expect(jitFunctions.count > 0, "the JIT processes were not profiled")
            #expect(!outcome.fleet.agent!.log.contains(secret.token), "the secret reached the agent's log")
            let metrics = Daemon.get("http://127.0.0.1:\(outcome.fleet.metricsPort)/metrics").map { String(decoding: $0.body, as: UTF8.self) } ?? ""
            #expect(!metrics.isEmpty && !metrics.contains(secret.token), "the secret reached the metrics")
        }
    }
}
