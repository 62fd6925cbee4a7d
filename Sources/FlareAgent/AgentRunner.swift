import FlareRecorder
import FlareSampler
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// Wires the agent together: spool, uploader, sampler and the metrics
/// endpoint as services of one group, with SIGTERM/SIGINT as graceful
/// shutdown and SIGHUP as a configuration reload.
public enum AgentRunner {
    /// Where a reload reads from: the same file, environment and flags as at start.
    public struct Sources: Sendable {
        public var file: String?
        public var environment: [String: String]
        public var flags: [AgentConfiguration.Setting]
        public init(file: String?, environment: [String: String], flags: [AgentConfiguration.Setting]) {
            self.file = file
            self.environment = environment
            self.flags = flags
        }
    }

    public static func run(_ configuration: AgentConfiguration, sources: Sources, logger: Logger) async throws {
        // Resident memory is one of the agent's budgets: glibc's default of an
        // arena per thread keeps each thread's freed memory apart.
        Linux.limitMallocArenas(to: 2)
        var destinations: [UploadDestination] = []
        let token = try readToken(configuration.tokenFile)
        if let url = configuration.storeURL { destinations.append(UploadDestination(kind: .store, baseURL: url, token: token)) }
        if let url = configuration.pyroscopeURL { destinations.append(UploadDestination(kind: .pyroscope, baseURL: url, token: token)) }
        let spool = try WindowSpool(directory: configuration.spoolDirectory, destinations: destinations.map(\.name),
                                    maxBytes: configuration.spoolMaxBytes)
        let metrics = AgentMetrics()
        let pending = destinations.map { spool.count(for: $0.name) }.reduce(0, +)
        if pending > 0 { logger.info("windows from an earlier run are in the spool; delivering them first", metadata: ["windows": "\(pending)"]) }

        let profiler = try ContinuousProfiler(options: configuration.continuousOptions)
        let uploader = WindowUploader(spool: spool, destinations: destinations, metrics: metrics, logger: logger,
                                      timeout: configuration.uploadTimeoutSeconds)
        let sampler = WindowSampler(profiler: profiler, configuration: configuration, spool: spool, uploader: uploader,
                                    metrics: metrics, logger: logger)
        // Shutdown runs in reverse order: the sampler spools its last window,
        // then the uploader makes its last pass, then the metrics endpoint closes.
        var services: [any Service] = []
        if let address = configuration.metricsAddress, let (host, port) = AgentConfiguration.hostPort(address) {
            try checkListenable(host: host, port: port, address: address)
            let router = Router()
            router.get("/metrics") { _, _ -> Response in
                var headers = HTTPFields()
                headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
                // No idle keep-alive connections to wait for when SIGTERM comes.
                headers[.connection] = "close"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: metrics.prometheusText(spool: spool))))
            }
            router.get("/health") { _, _ -> Response in
                var headers = HTTPFields()
                headers[.connection] = "close"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
            }
            var serverLogger = logger
            serverLogger.logLevel = .warning
            services.append(Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: serverLogger))
        }
        services.append(uploader)
        services.append(sampler)
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    do {
                        let next = try AgentConfiguration.load(file: sources.file, environment: sources.environment, flags: sources.flags)
                        let needRestart = restartOnlyChanges(from: configuration, to: next)
                        if !needRestart.isEmpty {
                            logger.notice("these settings take effect at the next start", metadata: ["keys": "\(needRestart.joined(separator: ", "))"])
                        }
                        sampler.reload(next)
                    } catch {
                        metrics.add(\.configReloadErrors, 1)
                        logger.error("configuration reload rejected; the running configuration stays", metadata: ["error": "\(error)"])
                    }
                }
            }
            try await group.run()
            tasks.cancelAll()
        }
    }

    /// Shipping and the metrics endpoint are fixed for the life of the process.
    static func restartOnlyChanges(from old: AgentConfiguration, to new: AgentConfiguration) -> [String] {
        var keys: [String] = []
        if old.storeURL != new.storeURL { keys.append("shipping.store_url") }
        if old.pyroscopeURL != new.pyroscopeURL { keys.append("shipping.pyroscope_url") }
        if old.tokenFile != new.tokenFile { keys.append("shipping.token_file") }
        if old.spoolDirectory != new.spoolDirectory { keys.append("shipping.spool_dir") }
        if old.spoolMaxBytes != new.spoolMaxBytes { keys.append("shipping.spool_max_bytes") }
        if old.metricsAddress != new.metricsAddress { keys.append("agent.metrics_address") }
        return keys
    }

    /// A port already taken fails here with a message naming the setting,
    /// rather than later inside the HTTP server.
    static func checkListenable(host: String, port: Int, address: String) throws(ConfigurationError) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            throw ConfigurationError("agent.metrics_address \(address): cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        if bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            let reason = String(cString: strerror(errno))
            throw ConfigurationError("agent.metrics_address \(address): cannot listen (\(reason)); another agent may be running: stop it, or choose another address (\"\" for none)")
        }
    }

    static func readToken(_ path: String?) throws(ConfigurationError) -> String? {
        guard let path else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError("shipping.token_file: cannot read \(path); check the path and its permissions")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw ConfigurationError("shipping.token_file: \(path) is empty") }
        return token
    }
}
