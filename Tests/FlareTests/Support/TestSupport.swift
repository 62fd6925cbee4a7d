import Foundation
import Testing

/// Runs real programs for the tests: the built `flare`, compilers, `pprof`, `perf`.
enum TestSupport {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let workloadSources = packageRoot.appendingPathComponent("Tests/FlareTests/Workloads")

    /// Where compiled workloads and test outputs go, fresh per test run.
    static let scratch: URL = {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("flare-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        // Readable by the unprivileged user of the permission test.
        chmod(url.path, 0o755)
        return url
    }()

    static var flareBinary: String {
        if let override = ProcessInfo.processInfo.environment["FLARE_BIN"] { return override }
        return packageRoot.appendingPathComponent(".build/debug/flare").path
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program to completion, capturing its output.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        // Files, not pipes: nothing can fill up and block the child.
        let outURL = scratch.appendingPathComponent("out-\(UUID().uuidString)")
        let errURL = scratch.appendingPathComponent("err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Output(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    static func flare(_ arguments: [String]) throws -> Output {
        try run(flareBinary, arguments)
    }

    /// Compiles a C workload with frame pointers (-O0 keeps them in leaf functions too).
    static func compileC(_ source: String, output: String? = nil, flags: [String] = ["-O0", "-fno-omit-frame-pointer"]) throws -> String {
        let name = output ?? String(source.split(separator: ".").first!)
        let binary = scratch.appendingPathComponent(name).path
        let result = try run("/usr/bin/gcc", ["-pthread", "-o", binary, workloadSources.appendingPathComponent(source).path] + flags)
        guard result.status == 0 else { throw TestFailure("gcc \(source) failed: \(result.stderr)") }
        return binary
    }

    static var swiftc: String { ProcessInfo.processInfo.environment["SWIFTC"] ?? "/opt/swift/usr/bin/swiftc" }

    static func compileSwift(_ source: String) throws -> String {
        let binary = scratch.appendingPathComponent(String(source.split(separator: ".").first!)).path
        let result = try run(swiftc, ["-Onone", "-o", binary, workloadSources.appendingPathComponent(source).path])
        guard result.status == 0 else { throw TestFailure("swiftc \(source) failed: \(result.stderr)") }
        return binary
    }

    /// Google's pprof, built from Debian's golang-github-google-pprof-dev by the test set-up.
    static func pprof() throws -> String {
        let candidates: [String?] = [ProcessInfo.processInfo.environment["FLARE_PPROF"], packageRoot.appendingPathComponent(".build/tools/pprof").path]
        for case let path? in candidates where FileManager.default.isExecutableFile(atPath: path) { return path }
        throw TestFailure("pprof is not built: run scripts/test (it builds .build/tools/pprof), or set FLARE_PPROF")
    }

    static func perf() throws -> String {
        for path in ["/usr/bin/perf", "/usr/local/bin/perf"] where FileManager.default.isExecutableFile(atPath: path) { return path }
        throw TestFailure("perf is not installed: run scripts/test (it installs linux-perf)")
    }

    /// Overwrites an ELF file's .eh_frame, past its first CIE's start, with junk.
    static func corruptEHFrame(of binary: String) throws {
        let sections = try run("/usr/bin/readelf", ["-SW", binary])
        guard let row = sections.stdout.split(separator: "\n").first(where: { $0.contains(" .eh_frame ") }) else {
            throw TestFailure("\(binary) has no .eh_frame")
        }
        let fields = row.split(separator: " ", omittingEmptySubsequences: true)
        guard let nameIndex = fields.firstIndex(of: ".eh_frame"), nameIndex + 4 < fields.count,
              let offset = UInt64(fields[nameIndex + 3], radix: 16), let size = Int(fields[nameIndex + 4], radix: 16)
        else { throw TestFailure("unexpected readelf row: \(row)") }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: binary))
        try handle.seek(toOffset: offset + 24)
        handle.write(Data((0..<max(0, size - 24)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }))
        try handle.close()
    }

    static func temporaryPath(_ name: String) -> String {
        scratch.appendingPathComponent(name).path
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
