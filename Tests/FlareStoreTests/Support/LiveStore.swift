#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation

/// The real `flare store` binary, started on a free loopback port.
final class LiveStore: @unchecked Sendable {
    let process = Process()
    let port: Int
    let logURL: URL
    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(arguments: [String], environment: [String: String]? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: StoreTestSupport.flareBinary) else {
            throw TestError("\(StoreTestSupport.flareBinary) is missing: run swift build first (scripts/test does)")
        }
        logURL = StoreTestSupport.scratch.appendingPathComponent("store-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.executableURL = URL(fileURLWithPath: StoreTestSupport.flareBinary)
        process.arguments = ["store", "--address", "127.0.0.1:0"] + arguments
        if let environment { process.environment = environment }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        var found: Int?
        while Date() < deadline, found == nil {
            let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(text[range].split(separator: ":").last!)
            } else if !process.isRunning {
                throw TestError("flare store exited at start: \(text)")
            } else {
                usleep(50_000)
            }
        }
        guard let found else { process.terminate(); throw TestError("flare store did not start within 60 s: \(log)") }
        port = found
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// SIGTERM, and wait for a graceful exit.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    func kill9() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }

    // MARK: A tiny HTTP client (URLSession from FoundationNetworking)

    struct HTTPResult { var status: Int; var body: Data }

    func request(_ path: String, method: String = "GET", body: Data? = nil, headers: [String: String] = [:]) async throws -> HTTPResult {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = 120
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return HTTPResult(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }

    func json(_ path: String) async throws -> [String: Any] {
        let r = try await request(path)
        guard r.status == 200, let object = try JSONSerialization.jsonObject(with: r.body) as? [String: Any] else {
            throw TestError("GET \(path): HTTP \(r.status) \(String(decoding: r.body, as: UTF8.self))")
        }
        return object
    }
}
