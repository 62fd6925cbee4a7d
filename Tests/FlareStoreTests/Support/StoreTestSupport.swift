import FlareProfile
import Foundation
import Testing
@testable import FlareStore

/// Shared helpers: test profiles, storage backends, and running real programs.
enum StoreTestSupport {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let scratch: URL = {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("flare-store-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    static func temporaryDirectory(_ name: String) -> String {
        let url = scratch.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// A test that needs an external piece: fails under CI, else prints a visible skip.
    static func requireOrSkip(_ what: String, available: Bool, hint: String) throws -> Bool {
        if available { return true }
        if isCI { throw TestError("\(what) is missing under CI=true: \(hint)") }
        print("SKIP: \(what) is not available (\(hint)); the test did not run")
        return false
    }

    static var postgresURL: String? {
        ProcessInfo.processInfo.environment["FLARE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    // MARK: Profiles

    struct Sample {
        var stack: [String]          // root first, like folded stacks
        var count: Int64
        var spanID: String? = nil
        var traceID: String? = nil
    }

    static let period: Int64 = 10_101_010

    /// Where the test profiles say each function starts.
    static func startLine(of name: String) -> Int64 { Int64(name.utf8.count) * 10 + 1 }

    /// A CPU profile like the agent writes: samples/count and cpu/nanoseconds.
    static func profile(_ samples: [Sample], timeNanos: Int64 = 1_700_000_000_000_000_000, durationNanos: Int64 = 10_000_000_000) -> Profile {
        var builder = ProfileBuilder.cpuProfile(periodNanos: period, timeNanos: timeNanos, durationNanos: durationNanos)
        for sample in samples {
            let locations = sample.stack.reversed().map { name -> UInt64 in
                let function = builder.function(name: name, file: "src/\(name.split(separator: ":").first ?? "x").swift",
                                                startLine: startLine(of: name))
                return builder.location(mappingID: 0, address: 0, lines: [Profile.Line(functionID: function)])
            }
            var labels: [Profile.Label] = []
            if let span = sample.spanID { labels.append(builder.label("span_id", span)) }
            if let trace = sample.traceID { labels.append(builder.label("trace_id", trace)) }
            builder.addSample(locationIDs: locations, values: [sample.count, sample.count * period], labels: labels)
        }
        return builder.profile
    }

    static func window(_ samples: [Sample], key: String, service: String = "checkout", labels: [(String, String)] = [],
                       start: Int64 = 1_700_000_000_000_000_000, duration: Int64 = 10_000_000_000) throws -> PreparedWindow {
        try ProfileIngest.prepare(profile: profile(samples, timeNanos: start, durationNanos: duration),
                                  request: .init(key: key, service: service, labels: try LabelSet(labels), startNanos: start, endNanos: start + duration))
    }

    /// Self samples per function name, the way FunctionTotals counts them.
    static func selfTotals(_ profile: Profile) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for entry in FunctionTotals(profile).entries where entry.selfValue > 0 { result[entry.function] = entry.selfValue }
        return result
    }

    static func totalTotals(_ profile: Profile) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for entry in FunctionTotals(profile).entries { result[entry.function] = entry.totalValue }
        return result
    }

    // MARK: Programs

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Double = 600) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let outURL = scratch.appendingPathComponent("out-\(UUID().uuidString)")
        let errURL = scratch.appendingPathComponent("err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate(); process.waitUntilExit(); throw TestError("\(executable) timed out after \(timeout) s") }
        process.waitUntilExit()
        try out.close(); try err.close()
        return Output(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    static var flareBinary: String {
        ProcessInfo.processInfo.environment["FLARE_BIN"] ?? packageRoot.appendingPathComponent(".build/debug/flare").path
    }

    static func pprof() throws -> String? {
        let candidates: [String?] = [ProcessInfo.processInfo.environment["FLARE_PPROF"], packageRoot.appendingPathComponent(".build/tools/pprof").path]
        for case let path? in candidates where FileManager.default.isExecutableFile(atPath: path) { return path }
        return nil
    }

    /// The Python of .build/venv, where scripts/test installs the OpenTelemetry SDK.
    static func venvPython() -> String? {
        let path = ProcessInfo.processInfo.environment["FLARE_TEST_PYTHON"] ?? packageRoot.appendingPathComponent(".build/venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    static func clientScript(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tests/FlareStoreTests/Clients/\(name)").path
    }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
