import Foundation
import Testing

/// Each mistake a user can make ends in one line that names the problem, a
/// non-zero exit, no crash, and no output file.
@Suite("flare record: bad input", .serialized)
struct BadInputTests {
    static func expectOneLineError(_ arguments: [String], mentioning words: [String],
                                   sourceLocation: SourceLocation = #_sourceLocation) throws {
        let output = TestSupport.temporaryPath("bad-\(UUID().uuidString).pb.gz")
        let result = try TestSupport.flare(["record", "-o", output] + arguments)
        #expect(result.status != 0, sourceLocation: sourceLocation)
        #expect(result.status < 128, "flare crashed: \(result.status)", sourceLocation: sourceLocation)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "expected one line, got: \(result.stderr)", sourceLocation: sourceLocation)
        for word in words {
            #expect(result.stderr.contains(word), "'\(word)' missing from: \(result.stderr)", sourceLocation: sourceLocation)
        }
        #expect(!FileManager.default.fileExists(atPath: output), "an output file was left behind", sourceLocation: sourceLocation)
    }

    @Test func aPidThatDoesNotExist() throws {
        try Self.expectOneLineError(["-p", "999999"], mentioning: ["no process", "999999"])
    }

    @Test func aCommandThatDoesNotExist() throws {
        try Self.expectOneLineError(["--", "flare-no-such-command"], mentioning: ["command not found", "flare-no-such-command"])
        try Self.expectOneLineError(["--", "/no/such/program"], mentioning: ["command not found"])
    }

    @Test func aCommandThatIsNotExecutable() throws {
        let plain = TestSupport.temporaryPath("not-executable")
        FileManager.default.createFile(atPath: plain, contents: Data("hello".utf8))
        try Self.expectOneLineError(["--", plain], mentioning: ["not executable"])
        // Executable bit set, but not a program: exec itself fails.
        let garbage = TestSupport.temporaryPath("not-a-program")
        FileManager.default.createFile(atPath: garbage, contents: Data([0, 1, 2, 3]), attributes: [.posixPermissions: 0o755])
        try Self.expectOneLineError(["--", garbage], mentioning: ["cannot run", "Exec format error"])
    }

    @Test func frequenciesOutOfRange() throws {
        let maximum = try String(contentsOfFile: "/proc/sys/kernel/perf_event_max_sample_rate", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.expectOneLineError(["-F", "0", "--", "true"], mentioning: ["frequency", "perf_event_max_sample_rate"])
        try Self.expectOneLineError(["-F", String(Int(maximum)! + 1), "--", "true"], mentioning: ["frequency", maximum])
    }

    @Test func anOutputInAMissingDirectory() throws {
        let result = try TestSupport.flare(["record", "-o", "/no/such/dir/out.pb.gz", "--", "true"])
        #expect(result.status != 0)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("/no/such/dir"))
        #expect(result.stderr.contains("does not exist"))
    }

    @Test func aBadDuration() throws {
        try Self.expectOneLineError(["-d", "soon", "--", "true"], mentioning: ["duration", "soon"])
    }

    /// Forces the real failure: an unprivileged user with perf_event_paranoid at 2.
    @Test func noPermissionToUsePerfEvents() throws {
        let paranoidPath = "/proc/sys/kernel/perf_event_paranoid"
        let saved = try String(contentsOfFile: paranoidPath, encoding: .utf8)
        try "2\n".write(toFile: paranoidPath, atomically: false, encoding: .utf8)
        defer { try? saved.write(toFile: paranoidPath, atomically: false, encoding: .utf8) }
        let result = try TestSupport.run("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                                             TestSupport.flareBinary, "record", "-a", "-d", "1s"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("perf_event_paranoid"))
        #expect(result.stderr.contains("CAP_PERFMON"))
    }
}
