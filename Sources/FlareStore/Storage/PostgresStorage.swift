import FlareFlameGraph
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The scale-out backend: PostgreSQL, shared by any number of store processes.
/// Functions and stacks are inserted with `ON CONFLICT DO NOTHING` outside the
/// window's transaction (an orphan row is harmless; rows never change), and the
/// window, its idempotency key and its span rows commit together.
public final class PostgresStorage: ProfileStorage {
    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let cache = IDCache()
    private let logger: Logger

    /// Connects with a `postgres://user:password@host:port/database?sslmode=disable|prefer|require` URL
    /// and creates the tables if they are missing.
    public init(url: String, logger: Logger = Logger(label: "flare.store.postgres")) async throws {
        let configuration = try Self.configuration(from: url)
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let client = self.client
        runTask = Task { await client.run() }
        self.logger = logger
        do {
            try await createSchema()
        } catch {
            runTask.cancel()
            throw StoreSetupError("cannot use the PostgreSQL database at \(Self.redacted(url)): \(Self.describe(error)); check that the server runs and the URL (user, password, database) is right")
        }
    }

    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(unparseable URL)" }
        if components.password != nil { components.password = "***" }
        return components.string ?? "(unparseable URL)"
    }

    static func psqlError(_ error: Error) -> PSQLError? {
        if let psql = error as? PSQLError { return psql }
        if let transaction = error as? PostgresTransactionError {
            for inner in [transaction.closureError, transaction.commitError, transaction.beginError] {
                if let psql = inner as? PSQLError { return psql }
            }
        }
        return nil
    }

    static func describe(_ error: Error) -> String {
        if let psql = psqlError(error) {
            if let message = psql.serverInfo?[.message] { return message }
            return "\(psql.code)"
        }
        return "\(error)"
    }

    static func configuration(from url: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty else {
            throw StoreSetupError("invalid database URL \(redacted(url)): use postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        let user = components.user ?? "postgres"
        let database = components.path.isEmpty || components.path == "/" ? user : String(components.path.dropFirst())
        let sslmode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch sslmode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw StoreSetupError("unsupported sslmode \(sslmode): use disable, prefer or require")
        }
        var configuration = PostgresClient.Configuration(host: host, port: components.port ?? 5432, username: user,
                                                         password: components.password, database: database, tls: tls)
        configuration.options.maximumConnections = 16
        return configuration
    }

    private func createSchema() async throws {
        let statements: [PostgresQuery] = [
            "SELECT pg_advisory_xact_lock(7461726501)",
            "CREATE TABLE IF NOT EXISTS functions(id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, file TEXT NOT NULL, UNIQUE(name, file))",
            // Databases made before functions kept their first line.
            "ALTER TABLE functions ADD COLUMN IF NOT EXISTS start_line BIGINT NOT NULL DEFAULT 0",
            "CREATE TABLE IF NOT EXISTS stacks(id BIGSERIAL PRIMARY KEY, hash BYTEA NOT NULL UNIQUE, frames BYTEA NOT NULL)",
            "CREATE TABLE IF NOT EXISTS series(id BIGSERIAL PRIMARY KEY, service TEXT NOT NULL, labels TEXT NOT NULL, UNIQUE(service, labels))",
            """
            CREATE TABLE IF NOT EXISTS windows(id BIGSERIAL PRIMARY KEY, series_id BIGINT NOT NULL, start_ns BIGINT NOT NULL,
                end_ns BIGINT NOT NULL, samples BIGINT NOT NULL, cpu_ns BIGINT NOT NULL, resolution_ns BIGINT NOT NULL DEFAULT 0, stacks BYTEA NOT NULL)
            """,
            "CREATE INDEX IF NOT EXISTS windows_series_start ON windows(series_id, start_ns)",
            "CREATE INDEX IF NOT EXISTS windows_end ON windows(end_ns)",
            "CREATE TABLE IF NOT EXISTS window_keys(key TEXT PRIMARY KEY, window_id BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS window_keys_window ON window_keys(window_id)",
            """
            CREATE TABLE IF NOT EXISTS span_samples(window_id BIGINT NOT NULL, stack_id BIGINT NOT NULL, span_id TEXT NOT NULL,
                trace_id TEXT NOT NULL, samples BIGINT NOT NULL, cpu_ns BIGINT NOT NULL)
            """,
            "CREATE INDEX IF NOT EXISTS span_samples_window ON span_samples(window_id)",
            "CREATE INDEX IF NOT EXISTS span_samples_span ON span_samples(span_id)",
            "CREATE INDEX IF NOT EXISTS span_samples_trace ON span_samples(trace_id)",
            """
            CREATE TABLE IF NOT EXISTS spans(trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT NOT NULL,
                name TEXT NOT NULL, service TEXT NOT NULL, kind BIGINT NOT NULL, start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL,
                status_code BIGINT NOT NULL, status_message TEXT NOT NULL, attributes TEXT NOT NULL, PRIMARY KEY(trace_id, span_id))
            """,
            "CREATE INDEX IF NOT EXISTS spans_span ON spans(span_id)",
            "CREATE INDEX IF NOT EXISTS spans_end ON spans(end_ns)",
            "CREATE INDEX IF NOT EXISTS spans_service ON spans(service)",
            "CREATE TABLE IF NOT EXISTS unnamed_functions(function_id BIGINT PRIMARY KEY, build_id TEXT NOT NULL, file_offset BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS unnamed_functions_build_id ON unnamed_functions(build_id)",
            "CREATE TABLE IF NOT EXISTS late_names(function_id BIGINT PRIMARY KEY, name TEXT NOT NULL, file TEXT NOT NULL, start_line BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS late_names_name ON late_names(name)",
        ]
        try await client.withTransaction(logger: logger) { connection in
            for statement in statements { try await connection.query(statement, logger: logger) }
        }
    }

    /// Retries what PostgreSQL reports as a serialization failure or deadlock:
    /// concurrent stores inserting the same new stacks can meet either.
    @discardableResult
    private func retrying<T>(_ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do { return try await body() } catch {
                let state = Self.psqlError(error)?.serverInfo?[.sqlState]
                guard attempt < 5, state == "40P01" || state == "40001" else { throw error }
                attempt += 1
                try await Task.sleep(nanoseconds: UInt64(attempt) * 10_000_000)
            }
        }
    }

    // MARK: Ingest

    private struct Duplicate: Error {}

    public func insert(_ window: PreparedWindow) async throws -> InsertOutcome {
        let logger = self.logger
        if try await client.query("SELECT 1 FROM window_keys WHERE key = \(window.key)").collect().count > 0 { return .duplicate }

        // Series.
        let seriesKey = IDCache.SeriesKey(service: window.service, labels: window.labels.canonicalJSON)
        var newSeries: [IDCache.SeriesKey: Int64] = [:]
        let seriesID: Int64
        if let known = cache.series(seriesKey) { seriesID = known } else {
            try await client.query("INSERT INTO series(service, labels) VALUES (\(seriesKey.service), \(seriesKey.labels)) ON CONFLICT DO NOTHING")
            var id: Int64?
            for try await (value) in try await client.query("SELECT id FROM series WHERE service = \(seriesKey.service) AND labels = \(seriesKey.labels)").decode(Int64.self) { id = value }
            guard let id else { throw StoreError(.internalServerError, "the series row vanished after insert") }
            seriesID = id
            newSeries[seriesKey] = id
        }

        // Functions.
        var functionIDs = window.functions.map { cache.function($0) }
        var newFunctions: [FunctionName: Int64] = [:]
        let missingFunctions = Array(Set(window.functions.indices.filter { functionIDs[$0] == nil }.map { window.functions[$0] }))
            .sorted { ($0.name, $0.file) < ($1.name, $1.file) }
        if !missingFunctions.isEmpty {
            let names = missingFunctions.map(\.name)
            let files = missingFunctions.map(\.file)
            let lines = missingFunctions.map(\.line)
            try await retrying {
                try await client.query("""
                    INSERT INTO functions(name, file, start_line)
                    SELECT * FROM unnest(\(names)::text[], \(files)::text[], \(lines)::bigint[]) ON CONFLICT DO NOTHING
                    """)
            }
            let rows = try await client.query("""
                SELECT f.id, f.name, f.file FROM functions f JOIN unnest(\(names)::text[], \(files)::text[]) AS u(name, file)
                ON f.name = u.name AND f.file = u.file
                """)
            for try await (id, name, file) in rows.decode((Int64, String, String).self) { newFunctions[FunctionName(name: name, file: file)] = id }
            for i in functionIDs.indices where functionIDs[i] == nil { functionIDs[i] = newFunctions[window.functions[i]] }
        }
        let globalFunctions = try functionIDs.map { id -> Int64 in
            guard let id else { throw StoreError(.internalServerError, "a function row vanished after insert") }
            return id
        }
        if !window.unnamedFunctions.isEmpty {
            let ids = window.unnamedFunctions.map { globalFunctions[Int($0.function)] }
            let buildIDs = window.unnamedFunctions.map(\.buildID)
            let offsets = window.unnamedFunctions.map { Int64(bitPattern: $0.fileOffset) }
            try await client.query("""
                INSERT INTO unnamed_functions(function_id, build_id, file_offset)
                SELECT * FROM unnest(\(ids)::bigint[], \(buildIDs)::text[], \(offsets)::bigint[]) ON CONFLICT DO NOTHING
                """)
        }

        // Stacks.
        let frames = window.stacks.map { $0.map { globalFunctions[Int($0)] } }
        var stackIDs = frames.map { cache.stack($0) }
        var newStacks: [[Int64]: Int64] = [:]
        var missing: [(hash: [UInt8], frames: [Int64])] = []
        var seenHashes = Set<[UInt8]>()
        for (i, f) in frames.enumerated() where stackIDs[i] == nil {
            let hash = SHA256.hash(StackFrames.encode(f))
            if seenHashes.insert(hash).inserted { missing.append((hash, f)) }
        }
        if !missing.isEmpty {
            missing.sort { $0.hash.lexicographicallyPrecedes($1.hash) }
            let hashes = missing.map { ByteBuffer(bytes: $0.hash) }
            let encoded = missing.map { ByteBuffer(bytes: StackFrames.encode($0.frames)) }
            try await retrying {
                try await client.query("""
                    INSERT INTO stacks(hash, frames) SELECT * FROM unnest(\(hashes)::bytea[], \(encoded)::bytea[]) ON CONFLICT DO NOTHING
                    """)
            }
            var byHash: [[UInt8]: Int64] = [:]
            for try await (id, hash) in try await client.query("SELECT id, hash FROM stacks WHERE hash = ANY(\(hashes)::bytea[])").decode((Int64, ByteBuffer).self) {
                byHash[Array(buffer: hash)] = id
            }
            for entry in missing {
                guard let id = byHash[entry.hash] else { throw StoreError(.internalServerError, "a stack row vanished after insert") }
                newStacks[entry.frames] = id
            }
            for i in stackIDs.indices where stackIDs[i] == nil { stackIDs[i] = newStacks[frames[i]] }
        }
        let globalStacks = stackIDs.map { $0! }
        cache.remember(functions: newFunctions, stacks: newStacks, series: newSeries)

        var merged: [Int64: StackValue] = [:]
        for (i, value) in window.values.enumerated() { merged[globalStacks[i], default: .zero].add(value) }
        let blob = ByteBuffer(bytes: WindowBlob.encode(merged.map { ($0.key, $0.value) }))
        let spanStacks = window.spanValues.map { globalStacks[Int($0.stack)] }
        let spanIDs = window.spanValues.map(\.spanID)
        let traceIDs = window.spanValues.map(\.traceID)
        let spanSamples = window.spanValues.map(\.value.samples)
        let spanCPU = window.spanValues.map(\.value.cpuNanos)

        do {
            try await retrying {
                try await client.withTransaction(logger: logger) { connection in
                    var windowID: Int64 = 0
                    for try await id in try await connection.query("""
                        INSERT INTO windows(series_id, start_ns, end_ns, samples, cpu_ns, resolution_ns, stacks)
                        VALUES (\(seriesID), \(window.startNanos), \(window.endNanos), \(window.total.samples), \(window.total.cpuNanos), 0, \(blob))
                        RETURNING id
                        """, logger: logger).decode(Int64.self) { windowID = id }
                    let inserted = try await connection.query("""
                        INSERT INTO window_keys(key, window_id) VALUES (\(window.key), \(windowID)) ON CONFLICT DO NOTHING RETURNING key
                        """, logger: logger).collect()
                    guard !inserted.isEmpty else { throw Duplicate() }
                    if !spanStacks.isEmpty {
                        try await connection.query("""
                            INSERT INTO span_samples(window_id, stack_id, span_id, trace_id, samples, cpu_ns)
                            SELECT \(windowID), * FROM unnest(\(spanStacks)::bigint[], \(spanIDs)::text[], \(traceIDs)::text[], \(spanSamples)::bigint[], \(spanCPU)::bigint[])
                            """, logger: logger)
                    }
                }
            }
        } catch is Duplicate {
            return .duplicate
        } catch let error as PostgresTransactionError {
            if error.closureError is Duplicate { return .duplicate }
            throw error
        }
        return .stored
    }

    public func insert(spans: [SpanRecord]) async throws {
        guard !spans.isEmpty else { return }
        // One row per (trace, span): the last copy in a batch wins, as a resend would.
        var unique: [String: SpanRecord] = [:]
        for span in spans { unique[span.traceID + span.spanID] = span }
        let list = unique.values.sorted { ($0.traceID, $0.spanID) < ($1.traceID, $1.spanID) }
        try await retrying {
            try await client.query("""
                INSERT INTO spans(trace_id, span_id, parent_span_id, name, service, kind, start_ns, end_ns, status_code, status_message, attributes)
                SELECT * FROM unnest(\(list.map(\.traceID))::text[], \(list.map(\.spanID))::text[], \(list.map(\.parentSpanID))::text[],
                    \(list.map(\.name))::text[], \(list.map(\.service))::text[], \(list.map(\.kind))::bigint[], \(list.map(\.startNanos))::bigint[],
                    \(list.map(\.endNanos))::bigint[], \(list.map(\.statusCode))::bigint[], \(list.map(\.statusMessage))::text[], \(list.map(\.attributesJSON))::text[])
                ON CONFLICT (trace_id, span_id) DO UPDATE SET parent_span_id = EXCLUDED.parent_span_id, name = EXCLUDED.name,
                    service = EXCLUDED.service, kind = EXCLUDED.kind, start_ns = EXCLUDED.start_ns, end_ns = EXCLUDED.end_ns,
                    status_code = EXCLUDED.status_code, status_message = EXCLUDED.status_message, attributes = EXCLUDED.attributes
                """)
        }
    }

    // MARK: Queries

    public func services() async throws -> [ServiceSummary] {
        var byName: [String: ServiceSummary] = [:]
        for try await (name, count, first, last) in try await client.query("""
            SELECT s.service, count(*)::bigint, min(w.start_ns), max(w.end_ns) FROM windows w JOIN series s ON s.id = w.series_id GROUP BY s.service
            """).decode((String, Int64, Int64, Int64).self) {
            byName[name] = ServiceSummary(name: name, windows: count, firstNanos: first, lastNanos: last, spans: 0)
        }
        for try await (name, count, first, last) in try await client.query("""
            SELECT service, count(*)::bigint, min(start_ns), max(end_ns) FROM spans GROUP BY service
            """).decode((String, Int64, Int64, Int64).self) {
            if byName[name] == nil { byName[name] = ServiceSummary(name: name, windows: 0, firstNanos: first, lastNanos: last, spans: 0) }
            byName[name]!.spans = count
        }
        return byName.values.sorted { $0.name < $1.name }
    }

    public func series(service: String?) async throws -> [SeriesRecord] {
        let rows = if let service {
            try await client.query("SELECT id, service, labels FROM series WHERE service = \(service)")
        } else {
            try await client.query("SELECT id, service, labels FROM series")
        }
        var result: [SeriesRecord] = []
        for try await (id, service, labels) in rows.decode((Int64, String, String).self) {
            result.append(SeriesRecord(id: id, service: service, labels: LabelSet(canonicalJSON: labels)))
        }
        return result
    }

    public func seriesExtents(service: String) async throws -> [SeriesExtent] {
        var result: [SeriesExtent] = []
        for try await (id, name, labels, first, last, count) in try await client.query("""
            SELECT s.id, s.service, s.labels, min(w.start_ns), max(w.end_ns), count(*)::bigint FROM series s JOIN windows w ON w.series_id = s.id
            WHERE s.service = \(service) GROUP BY s.id, s.service, s.labels
            """).decode((Int64, String, String, Int64, Int64, Int64).self) {
            result.append(SeriesExtent(series: SeriesRecord(id: id, service: name, labels: LabelSet(canonicalJSON: labels)),
                                       firstNanos: first, lastNanos: last, windows: count))
        }
        return result
    }

    public func mergedStacks(series: [Int64], range: TimeRange) async throws -> (stacks: [Int64: StackValue], windows: Int) {
        guard !series.isEmpty else { return ([:], 0) }
        var totals: [Int64: StackValue] = [:]
        var windows = 0
        let low = range.from - TimeRange.maxWindowNanos
        for try await blob in try await client.query("""
            SELECT stacks FROM windows WHERE series_id = ANY(\(series)::bigint[]) AND start_ns >= \(low) AND start_ns < \(range.until) AND end_ns > \(range.from)
            """).decode(ByteBuffer.self) {
            windows += 1
            try blob.withUnsafeReadableBytes { raw in try WindowBlob.add(raw, into: &totals) }
        }
        return (totals, windows)
    }

    public func windowTotals(series: [Int64], range: TimeRange) async throws -> [WindowTotal] {
        guard !series.isEmpty else { return [] }
        let low = range.from - TimeRange.maxWindowNanos
        var result: [WindowTotal] = []
        for try await (start, end, samples, cpu) in try await client.query("""
            SELECT start_ns, end_ns, samples, cpu_ns FROM windows
            WHERE series_id = ANY(\(series)::bigint[]) AND start_ns >= \(low) AND start_ns < \(range.until) AND end_ns > \(range.from) ORDER BY start_ns
            """).decode((Int64, Int64, Int64, Int64).self) {
            result.append(WindowTotal(startNanos: start, endNanos: end, value: StackValue(samples: samples, cpuNanos: cpu)))
        }
        return result
    }

    public func spanSamples(_ filter: SpanSampleFilter) async throws -> [SpanSampleRow] {
        var query = PostgresQuery(unsafeSQL: """
            SELECT p.stack_id, p.span_id, p.trace_id, sum(p.samples)::bigint, sum(p.cpu_ns)::bigint
            FROM span_samples p JOIN windows w ON w.id = p.window_id WHERE true
            """)
        var binds = PostgresBindings()
        func placeholder() -> String { "$\(binds.count)" }
        if let series = filter.series {
            if series.isEmpty { return [] }
            binds.append(series)
            query.sql += " AND w.series_id = ANY(\(placeholder())::bigint[])"
        }
        if let range = filter.range {
            binds.append(range.from - TimeRange.maxWindowNanos)
            query.sql += " AND w.start_ns >= \(placeholder())"
            binds.append(range.until)
            query.sql += " AND w.start_ns < \(placeholder())"
            binds.append(range.from)
            query.sql += " AND w.end_ns > \(placeholder())"
        }
        if let spanIDs = filter.spanIDs {
            if spanIDs.isEmpty { return [] }
            binds.append(spanIDs)
            query.sql += " AND p.span_id = ANY(\(placeholder())::text[])"
        }
        if let traceID = filter.traceID {
            binds.append(traceID)
            query.sql += " AND p.trace_id = \(placeholder())"
        }
        query.sql += " GROUP BY p.stack_id, p.span_id, p.trace_id"
        query.binds = binds
        var result: [SpanSampleRow] = []
        for try await (stack, span, trace, samples, cpu) in try await client.query(query).decode((Int64, String, String, Int64, Int64).self) {
            result.append(SpanSampleRow(stackID: stack, spanID: span, traceID: trace, value: StackValue(samples: samples, cpuNanos: cpu)))
        }
        return result
    }

    public func stackFrames(_ ids: [Int64]) async throws -> [Int64: [Int64]] {
        guard !ids.isEmpty else { return [:] }
        var result: [Int64: [Int64]] = [:]
        for try await (id, frames) in try await client.query("SELECT id, frames FROM stacks WHERE id = ANY(\(ids)::bigint[])").decode((Int64, ByteBuffer).self) {
            result[id] = frames.withUnsafeReadableBytes { StackFrames.decode($0) }
        }
        return result
    }

    public func functionNames(_ ids: [Int64]) async throws -> [Int64: FunctionName] {
        guard !ids.isEmpty else { return [:] }
        var result: [Int64: FunctionName] = [:]
        let rows = try await client.query("""
            SELECT f.id, coalesce(l.name, f.name), coalesce(l.file, f.file), coalesce(l.start_line, f.start_line)
            FROM functions f LEFT JOIN late_names l ON l.function_id = f.id WHERE f.id = ANY(\(ids)::bigint[])
            """)
        for try await (id, name, file, line) in rows.decode((Int64, String, String, Int64).self) {
            result[id] = FunctionName(name: name, file: file, line: line)
        }
        return result
    }

    public func functionIDs(named name: String) async throws -> [Int64] {
        var result: [Int64] = []
        for try await id in try await client.query("""
            SELECT id FROM functions WHERE name = \(name) AND id NOT IN (SELECT function_id FROM late_names)
            UNION SELECT function_id FROM late_names WHERE name = \(name)
            """).decode(Int64.self) { result.append(id) }
        return result
    }

    public func unnamedFunctions(buildID: String) async throws -> [(id: Int64, fileOffset: UInt64)] {
        var result: [(id: Int64, fileOffset: UInt64)] = []
        for try await (id, offset) in try await client.query("""
            SELECT function_id, file_offset FROM unnamed_functions
            WHERE build_id = \(buildID) AND function_id NOT IN (SELECT function_id FROM late_names)
            """).decode((Int64, Int64).self) { result.append((id, UInt64(bitPattern: offset))) }
        return result
    }

    public func nameFunctions(_ names: [Int64: FunctionName]) async throws {
        guard !names.isEmpty else { return }
        let ids = Array(names.keys)
        let functionNames = ids.map { names[$0]!.name }, files = ids.map { names[$0]!.file }, lines = ids.map { names[$0]!.line }
        try await client.query("""
            INSERT INTO late_names(function_id, name, file, start_line)
            SELECT * FROM unnest(\(ids)::bigint[], \(functionNames)::text[], \(files)::text[], \(lines)::bigint[])
            ON CONFLICT (function_id) DO UPDATE SET name = excluded.name, file = excluded.file, start_line = excluded.start_line
            """)
    }

    private func spans(_ query: PostgresQuery) async throws -> [SpanRecord] {
        var result: [SpanRecord] = []
        for try await row in try await client.query(query) {
            let (trace, span, parent, name, service, kind, start, end, code, message, attributes) =
                try row.decode((String, String, String, String, String, Int64, Int64, Int64, Int64, String, String).self)
            result.append(SpanRecord(traceID: trace, spanID: span, parentSpanID: parent, name: name, service: service, kind: kind,
                                     startNanos: start, endNanos: end, statusCode: code, statusMessage: message, attributesJSON: attributes))
        }
        return result
    }

    public func spans(traceID: String) async throws -> [SpanRecord] {
        try await spans("""
            SELECT trace_id, span_id, parent_span_id, name, service, kind, start_ns, end_ns, status_code, status_message, attributes
            FROM spans WHERE trace_id = \(traceID) ORDER BY start_ns
            """)
    }

    public func spans(spanIDs: [String]) async throws -> [SpanRecord] {
        guard !spanIDs.isEmpty else { return [] }
        return try await spans("""
            SELECT trace_id, span_id, parent_span_id, name, service, kind, start_ns, end_ns, status_code, status_message, attributes
            FROM spans WHERE span_id = ANY(\(spanIDs)::text[])
            """)
    }

    public func recentTraceIDs(service: String?, range: TimeRange, limit: Int) async throws -> [String] {
        let rows = if let service {
            try await client.query("""
                SELECT trace_id FROM spans WHERE start_ns < \(range.until) AND end_ns > \(range.from) AND service = \(service)
                GROUP BY trace_id ORDER BY min(start_ns) DESC, trace_id LIMIT \(Int64(limit))
                """)
        } else {
            try await client.query("""
                SELECT trace_id FROM spans WHERE start_ns < \(range.until) AND end_ns > \(range.from)
                GROUP BY trace_id ORDER BY min(start_ns) DESC, trace_id LIMIT \(Int64(limit))
                """)
        }
        var result: [String] = []
        for try await id in rows.decode(String.self) { result.append(id) }
        return result
    }

    public func spans(traceIDs: [String]) async throws -> [SpanRecord] {
        guard !traceIDs.isEmpty else { return [] }
        return try await spans("""
            SELECT trace_id, span_id, parent_span_id, name, service, kind, start_ns, end_ns, status_code, status_message, attributes
            FROM spans WHERE trace_id = ANY(\(traceIDs)::text[]) ORDER BY start_ns
            """)
    }

    public func traceTotals(traceIDs: [String]) async throws -> [String: StackValue] {
        guard !traceIDs.isEmpty else { return [:] }
        var result: [String: StackValue] = [:]
        for try await (trace, samples, cpu) in try await client.query("""
            SELECT trace_id, sum(samples)::bigint, sum(cpu_ns)::bigint FROM span_samples WHERE trace_id = ANY(\(traceIDs)::text[]) GROUP BY trace_id
            """).decode((String, Int64, Int64).self) {
            result[trace] = StackValue(samples: samples, cpuNanos: cpu)
        }
        return result
    }

    // MARK: Maintenance

    public func deleteOlder(than before: Int64) async throws -> Int {
        let logger = self.logger
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("DELETE FROM span_samples WHERE window_id IN (SELECT id FROM windows WHERE end_ns < \(before))", logger: logger)
            try await connection.query("DELETE FROM window_keys WHERE window_id IN (SELECT id FROM windows WHERE end_ns < \(before))", logger: logger)
            let deleted = try await connection.query("DELETE FROM windows WHERE end_ns < \(before) RETURNING id", logger: logger).collect().count
            try await connection.query("DELETE FROM spans WHERE end_ns < \(before)", logger: logger)
            return deleted
        }
    }

    public func downsample(before: Int64, resolution: Int64) async throws -> Int {
        guard resolution > 0 else { return 0 }
        let logger = self.logger
        return try await client.withTransaction(logger: logger) { connection in
            // One store at a time downsamples; the others skip this round.
            var locked = false
            for try await value in try await connection.query("SELECT pg_try_advisory_xact_lock(7461726502)", logger: logger).decode(Bool.self) { locked = value }
            guard locked else { return 0 }
            var groups: [Downsampler.Key: [Downsampler.Window]] = [:]
            for try await (id, series, start, end, samples, cpu, blob) in try await connection.query("""
                SELECT id, series_id, start_ns, end_ns, samples, cpu_ns, stacks FROM windows
                WHERE start_ns < \(before) AND resolution_ns < \(resolution) ORDER BY series_id, start_ns LIMIT 20000 FOR UPDATE
                """, logger: logger).decode((Int64, Int64, Int64, Int64, Int64, Int64, ByteBuffer).self) {
                let window = Downsampler.Window(id: id, series: series, start: start, end: end,
                                                value: StackValue(samples: samples, cpuNanos: cpu), blob: Array(buffer: blob))
                groups[Downsampler.key(window, resolution: resolution), default: []].append(window)
            }
            var merged = 0
            for (_, windows) in groups {
                let combined = try Downsampler.merge(windows)
                var newID: Int64 = 0
                for try await id in try await connection.query("""
                    INSERT INTO windows(series_id, start_ns, end_ns, samples, cpu_ns, resolution_ns, stacks)
                    VALUES (\(combined.series), \(combined.start), \(combined.end), \(combined.value.samples), \(combined.value.cpuNanos), \(resolution), \(ByteBuffer(bytes: combined.blob)))
                    RETURNING id
                    """, logger: logger).decode(Int64.self) { newID = id }
                let ids = windows.map(\.id)
                try await connection.query("UPDATE span_samples SET window_id = \(newID) WHERE window_id = ANY(\(ids)::bigint[])", logger: logger)
                try await connection.query("UPDATE window_keys SET window_id = \(newID) WHERE window_id = ANY(\(ids)::bigint[])", logger: logger)
                try await connection.query("DELETE FROM windows WHERE id = ANY(\(ids)::bigint[])", logger: logger)
                merged += windows.count - 1
            }
            return merged
        }
    }

    public func counts() async throws -> StorageCounts {
        for try await (w, s, st, f, sp) in try await client.query("""
            SELECT (SELECT count(*) FROM windows)::bigint, (SELECT coalesce(sum(samples), 0) FROM windows)::bigint,
                   (SELECT count(*) FROM stacks)::bigint, (SELECT count(*) FROM functions)::bigint, (SELECT count(*) FROM spans)::bigint
            """).decode((Int64, Int64, Int64, Int64, Int64).self) {
            return StorageCounts(windows: w, samples: s, stacks: st, functions: f, spans: sp)
        }
        throw StoreError(.internalServerError, "PostgreSQL returned no counts")
    }

    public func check() async throws {
        _ = try await client.query("SELECT 1").collect()
    }

    public func close() async throws {
        runTask.cancel()
        _ = await runTask.result
    }
}
