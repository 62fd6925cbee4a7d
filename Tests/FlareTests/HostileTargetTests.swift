import FlareProfile
import FlareTargetFiles
import FlareUnwind
import Foundation
import Testing

/// Attacks an unprivileged local user can make on the agent (docs/security.md),
/// each run for real as `nobody` beside an ordinary workload, with
/// `flare record -a` profiling the whole machine as root: the recording
/// ends on time, the other workload is profiled in full, and no byte of a
/// root-only secret reaches the profile or the output.
@Suite("hostile targets", .serialized)
struct HostileTargetTests {
    static let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

    /// SIGKILL: the test runner may hand its children a blocked SIGTERM.
    static func stop(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// A root-only secret: a file of mode 600 in a folder of mode 700.
    struct Secret {
        let folder: String
        let token = "FLARE_SECRET_\(UInt32.random(in: 0...UInt32.max))"

        init() throws {
            folder = "/root/flare-secret-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        }

        /// Writes `contents` to a root-only file in the folder; returns its path.
        func file(_ name: String, _ contents: Data) throws -> String {
            let path = folder + "/" + name
            FileManager.default.createFile(atPath: path, contents: contents, attributes: [.posixPermissions: 0o600])
            return path
        }

        func remove() { try? FileManager.default.removeItem(atPath: folder) }
    }

    /// The JIT workload as nobody, writing no perf map of its own: its pid and the address of its code.
    static func startJIT() throws -> (Process, Int32, String) {
        let binary = try TestSupport.compileC("jit.c", flags: ["-O2"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: asNobody[0])
        process.arguments = Array(asNobody.dropFirst()) + [binary, "100000", "nomap"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let line = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        guard let address = line.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines), address.hasPrefix("0x") else {
            stop(process)
            throw TestFailure("the JIT workload printed no address: \(line)")
        }
        return (process, process.processIdentifier, String(address.dropFirst(2)))
    }

    /// Records the whole machine for 4 s while `proportions` burns CPU, and
    /// checks what every attack must leave intact; returns the profile.
    static func recordBeside(secret: Secret?, name: String) throws -> Profile {
        let victim = try TestSupport.compileC("proportions.c")
        let work = Process()
        work.executableURL = URL(fileURLWithPath: victim)
        work.arguments = ["700"]
        try work.run()
        defer { Self.stop(work) }
        let path = TestSupport.temporaryPath("hostile-\(name)-\(UUID().uuidString).pb.gz")
        let started = Date()
        let cpuBefore = cpuSeconds(work.processIdentifier)
        // A recorder that hangs is killed at 30 s, so the suite reports it instead of hanging too.
        let output = try TestSupport.run("/usr/bin/timeout", ["-s", "KILL", "30", TestSupport.flareBinary, "record", "-a", "-d", "4s", "-F", "199", "-o", path])
        let cpu = cpuSeconds(work.processIdentifier) - cpuBefore
        let elapsed = Date().timeIntervalSince(started)
        #expect(output.status == 0, "\(name): flare record -a exited with \(output.status) (137: killed after 30 s): \(output.stderr)")
        #expect(elapsed < 10, "\(name): flare record -a -d 4s took \(elapsed) s")
        let profile = try Profile(pprofFile: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        // The ordinary workload (other suites' workloads share the machine) has
        // the samples its CPU time asks for: 199 a second of it, give or take
        // the recording's start and end and the clock tick of /proc's CPU times.
        let pid = String(work.processIdentifier)
        let victimSamples = profile.samples.filter { sample in
            sample.labels.contains { profile.string($0.key) == "pid" && profile.string($0.str) == pid }
        }.reduce(Int64(0)) { $0 + $1.values[0] }
        let expected = cpu * 199
        #expect(expected > 100 && abs(Double(victimSamples) - expected) <= 0.25 * expected + 20,
                "\(name): the ordinary workload has \(victimSamples) samples for \(cpu) s of CPU")
        if let secret {
            #expect(!profile.stringTable.contains { $0.contains(secret.token) }, "\(name): the secret reached the profile")
            #expect(!output.stdout.contains(secret.token) && !output.stderr.contains(secret.token), "\(name): the secret reached the output")
        }
        return profile
    }

    /// User plus system CPU time of a process so far, from /proc/PID/stat.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state is field 3, utime 14 and stime 15 (1-based, counting pid and name).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// What nobody plants at /tmp/perf-PID.map before the agent reads it.
    enum PlantedMap: String, CaseIterable {
        case fifo, symlinkToSecret, devZero, symlinkLoop, writableByOthers, genuine, hugeGenuine
    }

    /// Plants `/tmp/perf-PID.map` as nobody; a map that would name the JIT
    /// code after the secret is a root-only file of `secret`'s.
    static func plant(_ planted: PlantedMap, pid: Int32, address: String, secret: Secret) throws {
        let map = "/tmp/perf-\(pid).map"
        let secretMap = try secret.file("map-\(pid)", Data("\(address) 100 \(secret.token)\n".utf8))
        let line = "\(address) 100 jitted_counting_loop"
        let plant: String
        switch planted {
        case .fifo: plant = "mkfifo \(map)"
        case .symlinkToSecret: plant = "ln -s \(secretMap) \(map)"
        case .devZero: plant = "ln -s /dev/zero \(map)"
        case .symlinkLoop: plant = "ln -s \(map) \(map)"
        case .writableByOthers: plant = "umask 0; echo '\(line)' > \(map); chmod 666 \(map)"
        case .genuine: plant = "echo '\(line)' > \(map)"
        // 1 GB (sparse): read up to the agent's bound, its first line still names the code.
        case .hugeGenuine: plant = "echo '\(line)' > \(map); truncate -s 1G \(map)"
        }
        let planting = try TestSupport.run(asNobody[0], Array(asNobody.dropFirst()) + ["/bin/sh", "-c", plant])
        #expect(planting.status == 0, "\(plant): \(planting.stderr)")
    }

    @Test(arguments: PlantedMap.allCases)
    func aPlantedPerfMapNeitherHangsNorLeaks(_ planted: PlantedMap) throws {
        let (jit, pid, address) = try Self.startJIT()
        defer { Self.stop(jit) }
        let map = "/tmp/perf-\(pid).map"
        defer { unlink(map) }
        let secret = try Secret()
        defer { secret.remove() }
        try Self.plant(planted, pid: pid, address: address, secret: secret)

        let profile = try Self.recordBeside(secret: secret, name: planted.rawValue)
        // This process's samples only: other suites may run JITs of their own meanwhile.
        let jitNamed = profile.samples.contains { sample in
            sample.labels.contains { profile.string($0.key) == "pid" && profile.string($0.str) == String(pid) }
                && profile.frames(of: sample).contains { $0.function == "jitted_counting_loop" }
        }
        // Only a map its own user wrote, and nobody else may change, names JIT code.
        #expect(jitNamed == [.genuine, .hugeGenuine].contains(planted), "\(planted): JIT names read: \(jitNamed)")
    }

    /// A stripped program whose debug link points at a root-only debug file,
    /// by a path through "../" and by a plain name beside the program that is
    /// a symlink to it: neither is followed (debug files of a live process come
    /// only from the configured debug directory).
    @Test(arguments: ["../../../../", ""])
    func aDebugLinkOutOfTheDebugDirectoryIsNotFollowed(_ prefix: String) throws {
        let secret = try Secret()
        defer { secret.remove() }
        let folder = "/tmp/flare-hostile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let built = try TestSupport.compileC("stripped_hot.c", output: "stripped_hot_\(prefix.isEmpty ? "beside" : "dots")", flags: ["-O1", "-fno-inline"])
        // The secret debug file names the hot function after the secret.
        let debugFile = secret.folder + "/hot.debug"
        #expect(try TestSupport.run("/usr/bin/objcopy", ["--redefine-sym", "hidden_hot_loop=\(secret.token)", built, debugFile]).status == 0)
        chmod(debugFile, 0o600)
        let program = folder + "/hot"
        #expect(try TestSupport.run("/usr/bin/strip", ["--strip-all", "-o", program, built]).status == 0)
        let link = prefix.isEmpty ? "hot.debug" : prefix + String(secret.folder.dropFirst()) + "/hot.debug"
        if prefix.isEmpty { symlink(debugFile, folder + "/hot.debug") }
        // .gnu_debuglink: the name, NUL, padding to 4 bytes, a CRC (unchecked here).
        var section = Data(link.utf8) + Data([0])
        while section.count % 4 != 0 { section.append(0) }
        section.append(Data([0, 0, 0, 0]))
        let sectionFile = folder + "/debuglink"
        FileManager.default.createFile(atPath: sectionFile, contents: section)
        let added = try TestSupport.run("/usr/bin/objcopy", ["--add-section", ".gnu_debuglink=\(sectionFile)", program])
        #expect(added.status == 0, "\(added.stderr)")
        chmod(program, 0o755)

        let attacker = Process()
        attacker.executableURL = URL(fileURLWithPath: Self.asNobody[0])
        attacker.arguments = Array(Self.asNobody.dropFirst()) + [program, "6000"]
        try attacker.run()
        defer { Self.stop(attacker) }
        let profile = try Self.recordBeside(secret: secret, name: "debuglink-\(prefix.isEmpty ? "beside" : "dots")")
        #expect(profile.stringTable.contains { $0.hasPrefix("hot+0x") }, "the stripped program was profiled, by address")
    }

    /// A container root (a chroot) whose library path is an absolute symlink
    /// to a root-only host file: opened on the process's behalf, the path
    /// resolves inside its root, never to the host's file.
    @Test func aContainerSymlinkStaysInTheContainer() throws {
        let secret = try Secret()
        defer { secret.remove() }
        let hostSecret = try secret.file("libsecret.so", Data(secret.token.utf8))
        let root = "/tmp/flare-chroot-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for folder in ["", "/bin", "/lib"] {
            try FileManager.default.createDirectory(atPath: root + folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        let work = try TestSupport.compileC("proportions.c", output: "proportions_static", flags: ["-O0", "-static"])
        try FileManager.default.copyItem(atPath: work, toPath: root + "/bin/work")
        symlink(hostSecret, root + "/lib/libx.so")  // absolute: the host's secret, seen from outside
        let contained = Process()
        contained.executableURL = URL(fileURLWithPath: "/usr/sbin/chroot")
        contained.arguments = ["--userspec=65534:65534", root, "/bin/work", "3000"]
        try contained.run()
        defer { Self.stop(contained) }
        usleep(200_000)
        let pid = contained.processIdentifier
        let path = "/proc/\(pid)/root/lib/libx.so"
        // The kernel's own walk leaves the container: the attack is real.
        #expect(FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } == secret.token)
        // Flare's stays in it, where the symlink points at nothing.
        guard case .failure(let failure) = TargetFiles.open(path) else {
            Issue.record("\(path) was opened outside the container's root")
            return
        }
        #expect(failure.description.contains("No such file"), "\(failure)")
        #expect(!failure.description.contains(secret.token))
        // And the whole-machine profile of it carries nothing of the secret.
        _ = try Self.recordBeside(secret: secret, name: "container")
    }

    /// A file the agent has mapped, truncated by its owner: the pages past
    /// the new end read as zeros (counted) instead of ending the agent with
    /// SIGBUS. Were the guard missing, this test would end the test process.
    @Test func aFileTruncatedUnderTheAgentReadsAsZeros() throws {
        let built = try TestSupport.compileC("inlined.c", output: "truncated_under_agent", flags: ["-O2", "-g"])
        let copy = "/tmp/flare-truncated-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: built, toPath: copy)
        defer { unlink(copy) }
        chown(copy, 65534, 65534)
        let table = try UnwindTableCompiler.open(path: copy)
        let before = TruncationGuard.faults
        let truncated = try TestSupport.run(Self.asNobody[0], Array(Self.asNobody.dropFirst()) + ["/usr/bin/truncate", "-s", "0", copy])
        #expect(truncated.status == 0, "\(truncated.stderr)")
        // Resident pages would hide the truncation: drop them, then read every FDE.
        table.releasePages()
        table.compileAll()
        #expect(TruncationGuard.faults > before, "no page of the truncated file was read")
    }
}
