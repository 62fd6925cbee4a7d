import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Where windows go: the Flare store's native endpoint, or a Pyroscope-compatible `/ingest`.
public struct UploadDestination: Sendable {
    public enum Kind: String, Sendable { case store, pyroscope }
    public var kind: Kind
    public var baseURL: String
    public var token: String?

    /// The spool directory name of this destination.
    public var name: String { kind.rawValue }

    func request(for window: SpooledWindow) -> HTTPClientRequest? {
        let m = window.metadata
        var components = URLComponents(string: baseURL)
        switch kind {
        case .store:
            components?.path += "/api/v1/profiles"
            let labels = m.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(Self.escapeLabelValue($0.value))\"" }
            components?.queryItems = [
                URLQueryItem(name: "service", value: m.service), URLQueryItem(name: "window_id", value: m.windowID),
                URLQueryItem(name: "labels", value: "{" + labels.joined(separator: ",") + "}"),
                URLQueryItem(name: "from", value: String(m.startNanos)), URLQueryItem(name: "until", value: String(m.endNanos)),
            ]
        case .pyroscope:
            components?.path += "/ingest"
            // Pyroscope's name syntax has no quoting, and Pyroscope checks label
            // names as Prometheus does: names become host_name, values keep to safe characters.
            let labels = m.labels.sorted { $0.key < $1.key }.filter { $0.key != "service.name" }
                .map { "\(Self.pyroscopeLabelName($0.key))=\(Self.pyroscopeSafe($0.value))" }
            components?.queryItems = [
                URLQueryItem(name: "name", value: Self.pyroscopeSafe(m.service) + ".cpu{" + labels.joined(separator: ",") + "}"),
                URLQueryItem(name: "from", value: String(m.startNanos / 1_000_000_000)),
                URLQueryItem(name: "until", value: String(max(m.endNanos / 1_000_000_000, m.startNanos / 1_000_000_000 + 1))),
                URLQueryItem(name: "format", value: "pprof"), URLQueryItem(name: "spyName", value: "flare"),
            ]
        }
        // `+` is a space to most servers' query parsers; URLComponents leaves it alone.
        let query = components?.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        components?.percentEncodedQuery = query
        guard let url = components?.url else { return nil }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        if let token { request.headers.add(name: "Authorization", value: "Bearer " + token) }
        request.body = .bytes(ByteBuffer(bytes: window.payload))
        return request
    }

    static func escapeLabelValue(_ v: String) -> String {
        v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }

    /// A Prometheus label name, [A-Za-z_][A-Za-z0-9_]*: `container.id` becomes `container_id`.
    static func pyroscopeLabelName(_ s: String) -> String {
        let name = String(s.unicodeScalars.map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) ? Character($0) : "_" })
        return name.first?.isNumber == false ? name : "_" + name
    }

    static func pyroscopeSafe(_ s: String) -> String {
        String(s.unicodeScalars.map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-/:".unicodeScalars.contains($0)) ? Character($0) : "_" })
    }
}

/// Ships spooled windows, oldest first, to each destination; retries with
/// exponential backoff while a destination is down, and deletes a window only
/// once its destination acknowledged it. Runs as a `Service`: on graceful
/// shutdown it makes one last bounded pass, and what is left stays spooled.
public final class WindowUploader: Service, Sendable {
    let spool: WindowSpool
    let destinations: [UploadDestination]
    let metrics: AgentMetrics
    let logger: Logger
    let timeout: Double
    /// Bumped for every new window, so each destination's loop sees it.
    let generation = NIOLockedValueBox(0)
    /// How long the last pass may take after SIGTERM.
    let shutdownBudget: Double

    public init(spool: WindowSpool, destinations: [UploadDestination], metrics: AgentMetrics, logger: Logger, timeout: Double, shutdownBudget: Double = 1.5) {
        self.spool = spool
        self.destinations = destinations
        self.metrics = metrics
        self.logger = logger
        self.timeout = timeout
        self.shutdownBudget = shutdownBudget
    }

    /// A new window is in the spool.
    public func notify() { generation.withLockedValue { $0 += 1 } }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for destination in destinations {
                group.addTask { await self.ship(to: destination) }
            }
        }
    }

    private func ship(to destination: UploadDestination) async {
        let session = HTTPClient.shared
        var backoff = 0.5
        var seen = -1
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            switch await uploadPending(to: destination, session: session, deadline: nil) {
            case .drained:
                backoff = 0.5
                // Wait for the next window or shutdown, looking again every few seconds
                // in case files appeared some other way.
                for _ in 0..<50 where !Task.isShuttingDownGracefully {
                    let current = generation.withLockedValue { $0 }
                    if current != seen { seen = current; break }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            case .failing:
                // Full jitter keeps a fleet of agents from retrying in step.
                let delay = Double.random(in: backoff / 2...backoff)
                backoff = min(backoff * 2, 30)
                for _ in 0..<Int(delay * 10) + 1 where !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
        // SIGTERM: one more bounded pass; whatever is left is delivered after the next start.
        let deadline = Date().addingTimeInterval(shutdownBudget)
        _ = await uploadPending(to: destination, session: session, deadline: deadline)
        let left = spool.count(for: destination.name)
        if left > 0 { logger.notice("windows left in the spool for the next start", metadata: ["destination": "\(destination.baseURL)", "windows": "\(left)"]) }
    }

    private enum PassResult { case drained, failing }

    private func uploadPending(to destination: UploadDestination, session: HTTPClient, deadline: Date?) async -> PassResult {
        while true {
            if let deadline, Date() >= deadline { return .failing }
            guard let window = spool.oldest(for: destination.name, warn: { logger.warning("\($0)") }) else { return .drained }
            guard let request = destination.request(for: window) else {
                spool.setAside(window.path, reason: "cannot build an upload URL from \(destination.baseURL)", warn: { logger.warning("\($0)") })
                continue
            }
            let seconds = deadline.map { max(0.2, min(timeout, $0.timeIntervalSinceNow)) } ?? timeout
            do {
                let response = try await session.execute(request, timeout: .milliseconds(Int64(seconds * 1000)))
                let status = Int(response.status.code)
                // Only the start of an answer is shown; a store's answers are short.
                let body = Array(buffer: (try? await response.body.collect(upTo: 64 << 10)) ?? ByteBuffer())
                switch status {
                case 200..<300:
                    spool.remove(window)
                    metrics.add(\.uploadedWindows, 1)
                    metrics.add(\.uploadedBytes, window.payload.count)
                    logger.debug("window delivered", metadata: ["window_id": "\(window.metadata.windowID)", "destination": "\(destination.name)"])
                case 400, 404 where destination.kind == .pyroscope, 413, 415, 422:
                    // The destination will never take this window: keep it aside for a human, go on.
                    metrics.add(\.uploadErrors, 1)
                    let reason = "rejected with HTTP \(status): " + String(decoding: body.prefix(300), as: UTF8.self)
                    spool.setAside(window.path, reason: reason, warn: { logger.error("\($0)") })
                default:
                    metrics.add(\.uploadErrors, 1)
                    let hint = status == 401 || status == 403 ? " (check shipping.token_file)" : ""
                    logger.warning("upload failed, will retry", metadata: [
                        "destination": "\(destination.baseURL)", "status": "\(status)", "window_id": "\(window.metadata.windowID)",
                        "reason": "\(String(decoding: body.prefix(200), as: UTF8.self))\(hint)",
                    ])
                    return .failing
                }
            } catch {
                metrics.add(\.uploadErrors, 1)
                logger.warning("upload failed, will retry", metadata: ["destination": "\(destination.baseURL)", "error": "\(error)"])
                return .failing
            }
        }
    }
}
