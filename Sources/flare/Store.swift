import ArgumentParser
import Dispatch
import FlareStore
import FlareSymbols
import Foundation
import FlareViewer
import Glibc
import Logging

struct Store: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep profiles and spans from agents and tracers, and answer queries over HTTP.",
        discussion: """
            With no options it stores into SQLite under the data directory and listens on 127.0.0.1:4100. \
            Agents send pprof to POST /api/v1/profiles, Pyroscope clients to POST /ingest, OpenTelemetry \
            SDKs and Collectors send spans to POST /v1/traces; the query API is under /api/v1 (see \
            docs/api.md). SIGTERM or Ctrl-C stops it gracefully.

            Examples:
              flare store
              flare store --address 0.0.0.0:4100 --ingest-token-file /etc/flare/token
              flare store --database postgres://flare:secret@db:5432/flare

            The viewer is served at / (see docs/viewer.md) from the files built into flare; \
            --viewer-dir or $FLARE_VIEWER_DIR serve a viewer/ directory instead (to work on it).

            Tokens can also come from FLARE_INGEST_TOKEN and FLARE_QUERY_TOKEN, and the database URL \
            from FLARE_DATABASE_URL, so they stay out of the process list.
            """
    )

    @Option(help: "Listen on HOST:PORT. Loopback by default; use 0.0.0.0:4100 to accept other hosts (then set tokens).")
    var address = "127.0.0.1:4100"

    @Option(name: .customLong("data-dir"), help: "SQLite data directory (default: $FLARE_DATA_DIR, /var/lib/flare as root, else ~/.local/share/flare).")
    var dataDirectory: String?

    @Option(name: .customLong("database"), help: "PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB[?sslmode=disable|prefer|require], instead of SQLite (default: $FLARE_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Delete profiles and spans older than this: 7d, 36h, 30m (0 keeps everything).")
    var retention = "7d"

    @Option(name: .customLong("downsample-after"), help: "Merge windows older than this into coarser ones (0 turns it off).")
    var downsampleAfter = "1d"

    @Option(name: .customLong("downsample-to"), help: "The length of a downsampled window, at most 1h.")
    var downsampleTo = "1m"

    @Option(name: .customLong("max-body"), help: "Largest request body accepted: 16MiB, 512KiB, or bytes. Larger bodies get 413.")
    var maxBody = "16MiB"

    @Option(name: .customLong("max-decompressed"), help: "Largest profile accepted after gunzip (stops gzip bombs).")
    var maxDecompressed = "128MiB"

    @Option(name: .customLong("ingest-token"), help: "Bearer token ingest requests must send (visible in ps: prefer --ingest-token-file or $FLARE_INGEST_TOKEN).")
    var ingestToken: String?

    @Option(name: .customLong("query-token"), help: "Bearer token query requests must send (visible in ps: prefer --query-token-file or $FLARE_QUERY_TOKEN).")
    var queryToken: String?

    @Option(name: .customLong("ingest-token-file"), help: "File holding the bearer token ingest requests must send (default: $FLARE_INGEST_TOKEN; none: open).")
    var ingestTokenFile: String?

    @Option(name: .customLong("query-token-file"), help: "File holding the bearer token query requests must send (default: $FLARE_QUERY_TOKEN; none: open).")
    var queryTokenFile: String?

    @Option(name: .customLong("maintenance-interval"), help: "How often retention and downsampling run.")
    var maintenanceInterval = "5m"

    @Option(name: .customLong("debuginfod"),
            help: "debuginfod servers (space-separated URLs) asked for the debug files of functions agents could not name (default: $DEBUGINFOD_URLS; \"\" for none).")
    var debuginfodURLs: String?

    @Option(name: .customLong("viewer-dir"), help: "Serve the viewer from this directory (holding index.html) instead of the one built in; default: $FLARE_VIEWER_DIR if set.")
    var viewerDirectory: String?

    @Option(name: .customLong("trace-url"), help: "Open traces in Jaeger or Tempo: a URL with {trace_id} (and optionally {span_id}), like http://jaeger:16686/trace/{trace_id}.")
    var traceURLTemplate: String?

    func run() throws {
        let environment = Environment.variables
        var configuration = StoreConfiguration(dataDirectory: dataDirectory
            ?? StoreConfiguration.defaultDataDirectory(environment: environment, isRoot: getuid() == 0))
        do {
            let (host, port) = try Self.parseAddress(address)
            configuration.host = host
            configuration.port = port
            configuration.databaseURL = databaseURL ?? environment["FLARE_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
            configuration.retentionNanos = retention == "0" ? 0 : try duration(retention, "--retention")
            configuration.downsampleAfterNanos = downsampleAfter == "0" ? 0 : try duration(downsampleAfter, "--downsample-after")
            configuration.downsampleResolutionNanos = try duration(downsampleTo, "--downsample-to")
            guard configuration.downsampleResolutionNanos >= 1_000_000_000, configuration.downsampleResolutionNanos <= 3_600_000_000_000 else {
                throw InputError(description: "--downsample-to must be between 1s and 1h")
            }
            configuration.maxBodyBytes = try Self.parseSize(maxBody, "--max-body")
            configuration.maxDecompressedBytes = try Self.parseSize(maxDecompressed, "--max-decompressed")
            configuration.ingestToken = try ingestToken ?? token(file: ingestTokenFile, environment: environment["FLARE_INGEST_TOKEN"])
            configuration.queryToken = try queryToken ?? token(file: queryTokenFile, environment: environment["FLARE_QUERY_TOKEN"])
            configuration.maintenanceIntervalSeconds = Int(max(1, try duration(maintenanceInterval, "--maintenance-interval") / 1_000_000_000))
            if let template = traceURLTemplate {
                guard template.hasPrefix("http://") || template.hasPrefix("https://"), template.contains("{trace_id}") else {
                    throw InputError(description: "invalid --trace-url \(template): use an http(s) URL containing {trace_id}")
                }
                configuration.traceURLTemplate = template
            }
            // Fetched files live beside the data, in libdebuginfod's cache layout.
            configuration.debuginfod = DebuginfodEnvironment.settings(urls: debuginfodURLs).map {
                var settings = $0
                settings.cacheDirectory = (configuration.dataDirectory as NSString).appendingPathComponent("debuginfod-cache")
                return settings
            }
            do {
                configuration.viewer = try ViewerAssets.locate(explicit: viewerDirectory, environment: environment)
            } catch {
                // A wrong flag is a mistake to fix now; a stale variable in a service's environment only costs a warning.
                if viewerDirectory != nil { throw InputError(description: "\(error)") }
                printError("warning: FLARE_VIEWER_DIR: \(error); serving the viewer built into flare")
                configuration.viewer = .embedded
            }
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }

        let logger = Daemon.logger("flare.store", level: .info)
        let config = configuration
        try Daemon.run {
            try await StoreServer.run(config, logger: logger) { StandardStream.error.write($0 + "\n") }
        }
    }

    private func duration(_ text: String, _ option: String) throws -> Int64 {
        do { return try TimeRange.parseDuration(text) } catch {
            throw InputError(description: "invalid \(option) \(text): use a number with s, m, h or d, like 7d")
        }
    }

    private func token(file: String?, environment: String?) throws -> String? {
        if let file {
            guard let fp = fopen(file, "r") else {
                throw InputError(description: "cannot read the token file \(file): \(String(cString: strerror(errno)))")
            }
            defer { fclose(fp) }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = fread(&buffer, 1, buffer.count, fp)
                if n <= 0 { break }
                bytes += buffer[..<n]
            }
            let token = String(String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" }).first ?? "")
                .split(separator: " ").joined()
            guard !token.isEmpty else { throw InputError(description: "the token file \(file) is empty") }
            return token
        }
        return environment.flatMap { $0.isEmpty ? nil : $0 }
    }

    static func parseAddress(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw InputError(description: "invalid --address \(text): use HOST:PORT, like 127.0.0.1:4100 or 0.0.0.0:4100")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    static func parseSize(_ text: String, _ option: String) throws -> Int {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000),
                                      ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let n = Int(text.dropLast(suffix.count)), n > 0, n <= Int.max / scale { return n * scale }
        }
        if let n = Int(text), n > 0 { return n }
        throw InputError(description: "invalid \(option) \(text): use a size like 16MiB, 512KiB or a number of bytes")
    }
}

/// The environment, read once (Foundation-free).
enum Environment {
    static var variables: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") { result[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
            pointer += 1
        }
        return result
    }
}

/// Long-running subcommands: logging to stderr, and an async body run to
/// completion from the synchronous command, its error printed as one line.
enum Daemon {
    static func logger(_ label: String, level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }

    static func run(_ body: @escaping @Sendable () async throws -> Void) throws {
        let failure = FailureBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await body() } catch { failure.set("\(error)") }
            done.signal()
        }
        done.wait()
        if let message = failure.get() {
            printError(message)
            throw ExitCode.failure
        }
    }
}

/// Carries an error message out of the server task.
final class FailureBox: @unchecked Sendable {
    private var message: String?
    private let lock = NSLockLike()
    func set(_ m: String) { lock.with { message = m } }
    func get() -> String? { lock.with { message } }
}

/// A pthread mutex, so this file needs no Foundation.
final class NSLockLike: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func with<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}
