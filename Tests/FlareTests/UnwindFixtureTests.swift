import Foundation
import Testing

/// Recorded cases replayed offline: `perf record` recordings (registers, stack
/// copies, mappings) with the ELF files they need under `root/`, and the stacks
/// perf unwound from them (`scripts/record-unwind-fixtures` made them). No
/// perf_event and no live process: the same bytes give the same stacks, so an
/// unwinder regression fails here deterministically.
@Suite("Unwinding fixtures (offline)", .serialized)
struct UnwindFixtureTests {
    static let fixtures = TestSupport.packageRoot.appendingPathComponent("Tests/FlareTests/Fixtures/unwind").path
    static let root = fixtures + "/root"
    static let cases = ["deep_nofp", "libc_sort", "recursion", "inlined", "dlopen", "signal_frame"]
    /// Recorded under this path; not present on a test machine, so nothing is read from it.
    static let recordedBinaries = "/tmp/flare-unwind-fixtures"

    static func expected(_ name: String) throws -> [String: Int] {
        PerfScript.normalizedFolded(try String(contentsOfFile: "\(fixtures)/\(name).expected", encoding: .utf8))
    }

    static func replay(_ name: String, root: String = root, extra: [String] = []) throws -> [String: Int] {
        let result = try TestSupport.flare(["convert", "\(fixtures)/\(name).data", "--symfs", root, "--no-inline",
                                            "--format", "folded", "-q"] + extra)
        #expect(result.status == 0, "\(result.stderr)")
        // perf leaves glibc's signal trampoline unnamed; Flare names it from libc's symbols.
        return PerfScript.normalizedFolded(result.stdout, unnamed: ["__restore_rt"])
    }

    /// A copy of the fixture tree to damage.
    static func scratchRoot(_ label: String) throws -> String {
        let copy = TestSupport.temporaryPath("fixture-root-\(label)-\(UUID().uuidString)")
        try FileManager.default.copyItem(atPath: root, toPath: copy)
        return copy
    }

    @Test(arguments: cases)
    func replayGivesPerfsStacksExactly(_ name: String) throws {
        #expect(!FileManager.default.fileExists(atPath: Self.recordedBinaries),
                "\(Self.recordedBinaries) exists: the replay could read it instead of the fixture's copies")
        let expected = try Self.expected(name)
        #expect(expected.values.reduce(0, +) >= 20)
        let ours = try Self.replay(name)
        #expect(ours == expected, "\(name): flare \(ours.sorted { $0.value > $1.value }.prefix(3)) vs perf \(expected.sorted { $0.value > $1.value }.prefix(3))")
    }

    @Test func inlinedCallsAreFramesOfTheirOwn() throws {
        let result = try TestSupport.flare(["convert", "\(Self.fixtures)/inlined.data", "--symfs", Self.root, "--format", "folded", "-q"])
        #expect(result.status == 0)
        #expect(result.stdout.contains(";main;churn;mix "), "\(result.stdout)")
    }

    @Test func aStackCopyTooSmallEndsInAMarker() throws {
        let stacks = try Self.replay("recursion", extra: ["--stack-size", "1024"])
        #expect(stacks.values.reduce(0, +) == (try Self.expected("recursion")).values.reduce(0, +))
        for stack in stacks.keys {
            #expect(stack.hasPrefix("[truncated: stack copy too small];recurse;"), "\(stack.prefix(120))")
        }
    }

    @Test func aMissingBinaryEndsInAMarker() throws {
        let root = try Self.scratchRoot("missing")
        try FileManager.default.removeItem(atPath: root + Self.recordedBinaries + "/deep_nofp")
        let stacks = try Self.replay("deep_nofp", root: root)
        #expect(stacks.values.reduce(0, +) == (try Self.expected("deep_nofp")).values.reduce(0, +))
        #expect(stacks.keys.allSatisfy { $0.hasPrefix("[truncated: ") }, "\(stacks)")
    }

    @Test func aStrippedBinaryStillUnwindsCompletely() throws {
        let root = try Self.scratchRoot("stripped")
        let stripped = try TestSupport.run("/usr/bin/strip", ["--strip-all", root + Self.recordedBinaries + "/deep_nofp"])
        #expect(stripped.status == 0)
        let stacks = try Self.replay("deep_nofp", root: root)
        let expected = try Self.expected("deep_nofp")
        #expect(stacks.values.reduce(0, +) == expected.values.reduce(0, +))
        // Same depth, same libc frames: only the binary's own names are gone.
        let depths = Set(stacks.keys.map { $0.split(separator: ";").count })
        #expect(depths == Set(expected.keys.map { $0.split(separator: ";").count }))
        #expect(stacks.keys.allSatisfy { $0.contains(";__libc_start_main;__libc_start_call_main;") })
    }

    @Test func corruptCFIEndsCleanly() throws {
        let root = try Self.scratchRoot("corrupt")
        let binary = root + Self.recordedBinaries + "/recursion"
        try TestSupport.corruptEHFrame(of: binary)
        let stacks = try Self.replay("recursion", root: root)
        #expect(stacks.values.reduce(0, +) == (try Self.expected("recursion")).values.reduce(0, +))
        #expect(stacks.keys.allSatisfy { $0.split(separator: ";").count <= 260 })
        #expect(stacks.keys.allSatisfy { $0.hasPrefix("_start;") || $0.hasPrefix("[truncated: ") }, "\(stacks)")
    }

    /// Another program at the recorded path (a deploy between recording and
    /// replay): the walk goes wrong at once and must stop, marked.
    @Test func aReplacedBinaryEndsCleanly() throws {
        let root = try Self.scratchRoot("replaced")
        let directory = root + Self.recordedBinaries
        try FileManager.default.removeItem(atPath: directory + "/deep_nofp")
        try FileManager.default.copyItem(atPath: directory + "/recursion", toPath: directory + "/deep_nofp")
        let stacks = try Self.replay("deep_nofp", root: root)
        #expect(stacks.values.reduce(0, +) == (try Self.expected("deep_nofp")).values.reduce(0, +))
        #expect(stacks.keys.allSatisfy { $0.split(separator: ";").count <= 260 })
        #expect(stacks.keys.allSatisfy { $0.hasPrefix("[truncated: ") }, "\(stacks)")
    }
}
