import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Builds and runs the store: storage, queries, HTTP routes, and the
/// maintenance loop, as one Hummingbird application with graceful shutdown
/// on SIGTERM and SIGINT.
public enum StoreServer {
    /// Opens the configured storage: PostgreSQL with a database URL, else SQLite in the data directory.
    public static func openStorage(_ configuration: StoreConfiguration, logger: Logger) async throws -> any ProfileStorage {
        if let url = configuration.databaseURL, !url.isEmpty {
            return try await PostgresStorage(url: url, logger: logger)
        }
        return try SQLiteStorage(directory: configuration.dataDirectory)
    }

    /// The application, for `runService()` or for tests (`app.test(.router)`).
    public static func application(
        storage: any ProfileStorage, configuration: StoreConfiguration, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let metrics = StoreMetrics()
        let router = Router(context: BasicRequestContext.self)
        let engine = QueryEngine(storage: storage)
        let late = LateSymbolizer(dataDirectory: configuration.dataDirectory, debuginfod: configuration.debuginfod)
        StoreRoutes(engine: engine, configuration: configuration, metrics: metrics, late: late).register(on: router)
        let responder = StoreResponder(inner: router.buildResponder(), configuration: configuration, metrics: metrics)
        return Application(
            responder: responder,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            services: [MaintenanceService(storage: storage, configuration: configuration, logger: logger),
                       LateNamingService(engine: engine, late: late, logger: logger)],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger
        )
    }

    /// Runs until SIGTERM or SIGINT, then finishes in-flight requests and closes the database.
    public static func run(_ configuration: StoreConfiguration, logger: Logger, announce: @escaping @Sendable (String) -> Void) async throws {
        let storage = try await openStorage(configuration, logger: logger)
        let where_ = configuration.databaseURL.map { PostgresStorage.redacted($0) } ?? (storage as? SQLiteStorage)?.path ?? configuration.dataDirectory
        let app = application(storage: storage, configuration: configuration, logger: logger) { port in
            announce("flare store listening on http://\(configuration.host):\(port) (storage: \(where_))")
        }
        do {
            try await app.runService()
        } catch {
            try? await storage.close()
            throw error
        }
        try await storage.close()
    }
}

/// Names functions from the debug files debuginfod delivers, every second,
/// stopping at graceful shutdown; idle without servers.
struct LateNamingService: Service {
    let engine: QueryEngine
    let late: LateSymbolizer
    let logger: Logger

    func run() async throws {
        // Cancelled at graceful shutdown; a service that returned early would end the store.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(late.fetcher == nil ? 3600 : 1))
                do {
                    if try await late.adoptFetched(storage: engine.storage) > 0 { engine.forgetNames() }
                } catch {
                    logger.error("naming functions from debuginfod failed: \(error)")
                }
            }
        }
    }
}

/// Retention and downsampling, every few minutes, stopping at graceful shutdown.
struct MaintenanceService: Service {
    let storage: any ProfileStorage
    let configuration: StoreConfiguration
    let logger: Logger

    func run() async throws {
        // Cancelled at graceful shutdown: the sleep ends early and the loop stops cleanly.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await runOnce(now: TimeRange.now())
                try? await Task.sleep(for: .seconds(configuration.maintenanceIntervalSeconds))
            }
        }
    }

    func runOnce(now: Int64) async {
        do {
            if configuration.retentionNanos > 0 {
                let deleted = try await storage.deleteOlder(than: now - configuration.retentionNanos)
                if deleted > 0 { logger.info("retention deleted \(deleted) windows") }
            }
            if configuration.downsampleAfterNanos > 0 {
                let merged = try await storage.downsample(before: now - configuration.downsampleAfterNanos,
                                                          resolution: configuration.downsampleResolutionNanos)
                if merged > 0 { logger.info("downsampling merged \(merged) windows") }
            }
        } catch {
            logger.error("maintenance failed: \(error)")
        }
    }
}
