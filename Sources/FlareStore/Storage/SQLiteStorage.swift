import FlareFlameGraph
import Foundation
import GRDB

/// The embedded default: one SQLite database in WAL mode under a data
/// directory. Every acknowledged write is committed with `synchronous=FULL`,
/// so a crash (or `kill -9`) never loses or half-writes an acknowledged window.
public final class SQLiteStorage: ProfileStorage {
    private let pool: DatabasePool
    private let cache = IDCache()
    public let path: String

    /// Opens (creating if needed) `DIRECTORY/flare.sqlite`.
    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreSetupError("cannot create the data directory \(directory): \(error.localizedDescription); choose another with --data-dir")
        }
        path = (directory as NSString).appendingPathComponent("flare.sqlite")
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.maximumReaderCount = 8
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try pool.write { db in try Self.createSchema(db) }
        } catch {
            throw StoreSetupError("cannot open the SQLite database \(path): \(error)")
        }
    }

    private static func createSchema(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS functions(
                id INTEGER PRIMARY KEY, name TEXT NOT NULL, file TEXT NOT NULL, start_line INTEGER NOT NULL DEFAULT 0,
                UNIQUE(name, file));
            CREATE TABLE IF NOT EXISTS stacks(
                id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, frames BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS series(
                id INTEGER PRIMARY KEY, service TEXT NOT NULL, labels TEXT NOT NULL, UNIQUE(service, labels));
            CREATE TABLE IF NOT EXISTS windows(
                id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
                samples INTEGER NOT NULL, cpu_ns INTEGER NOT NULL, resolution_ns INTEGER NOT NULL DEFAULT 0, stacks BLOB NOT NULL);
            CREATE INDEX IF NOT EXISTS windows_series_start ON windows(series_id, start_ns);
            CREATE INDEX IF NOT EXISTS windows_end ON windows(end_ns);
            CREATE TABLE IF NOT EXISTS window_keys(key TEXT PRIMARY KEY, window_id INTEGER NOT NULL) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS window_keys_window ON window_keys(window_id);
            CREATE TABLE IF NOT EXISTS span_samples(
                window_id INTEGER NOT NULL, stack_id INTEGER NOT NULL, span_id TEXT NOT NULL, trace_id TEXT NOT NULL,
                samples INTEGER NOT NULL, cpu_ns INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS span_samples_window ON span_samples(window_id);
            CREATE INDEX IF NOT EXISTS span_samples_span ON span_samples(span_id);
            CREATE INDEX IF NOT EXISTS span_samples_trace ON span_samples(trace_id);
            CREATE TABLE IF NOT EXISTS spans(
                trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT NOT NULL, name TEXT NOT NULL,
                service TEXT NOT NULL, kind INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
                status_code INTEGER NOT NULL, status_message TEXT NOT NULL, attributes TEXT NOT NULL,
                PRIMARY KEY(trace_id, span_id));
            CREATE INDEX IF NOT EXISTS spans_span ON spans(span_id);
            CREATE INDEX IF NOT EXISTS spans_end ON spans(end_ns);
            CREATE INDEX IF NOT EXISTS spans_service ON spans(service);
            CREATE TABLE IF NOT EXISTS unnamed_functions(
                function_id INTEGER PRIMARY KEY, build_id TEXT NOT NULL, file_offset INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS unnamed_functions_build_id ON unnamed_functions(build_id);
            CREATE TABLE IF NOT EXISTS late_names(
                function_id INTEGER PRIMARY KEY, name TEXT NOT NULL, file TEXT NOT NULL, start_line INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS late_names_name ON late_names(name);
            """)
        // Databases made before functions kept their first line.
        let functionColumns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('functions')")
        if !functionColumns.contains("start_line") {
            try db.execute(sql: "ALTER TABLE functions ADD COLUMN start_line INTEGER NOT NULL DEFAULT 0")
        }
    }

    // MARK: Ingest

    public func insert(_ window: PreparedWindow) async throws -> InsertOutcome {
        let cache = self.cache
        let seriesKey = IDCache.SeriesKey(service: window.service, labels: window.labels.canonicalJSON)
        // Global ids for what the cache already knows, outside the write lock.
        let knownFunctions = window.functions.map { cache.function($0) }
        let knownSeries = cache.series(seriesKey)
        let result: (InsertOutcome, [FunctionName: Int64], [[Int64]: Int64], [IDCache.SeriesKey: Int64]) = try await pool.write { db in
            if try Int64.fetchOne(db, sql: "SELECT window_id FROM window_keys WHERE key = ?", arguments: [window.key]) != nil {
                return (.duplicate, [:], [:], [:])
            }
            var newFunctions: [FunctionName: Int64] = [:]
            var newStacks: [[Int64]: Int64] = [:]
            var newSeries: [IDCache.SeriesKey: Int64] = [:]

            let seriesID: Int64
            if let knownSeries { seriesID = knownSeries } else {
                try db.execute(sql: "INSERT OR IGNORE INTO series(service, labels) VALUES (?, ?)", arguments: [seriesKey.service, seriesKey.labels])
                seriesID = try Int64.fetchOne(db, sql: "SELECT id FROM series WHERE service = ? AND labels = ?", arguments: [seriesKey.service, seriesKey.labels])!
                newSeries[seriesKey] = seriesID
            }

            let insertFunction = try db.cachedStatement(sql: "INSERT OR IGNORE INTO functions(name, file, start_line) VALUES (?, ?, ?)")
            let selectFunction = try db.cachedStatement(sql: "SELECT id FROM functions WHERE name = ? AND file = ?")
            var functionIDs: [Int64] = []
            functionIDs.reserveCapacity(window.functions.count)
            for (i, function) in window.functions.enumerated() {
                if let id = knownFunctions[i] { functionIDs.append(id); continue }
                try insertFunction.execute(arguments: [function.name, function.file, function.line])
                let id = try Int64.fetchOne(selectFunction, arguments: [function.name, function.file])!
                newFunctions[function] = id
                functionIDs.append(id)
            }

            if !window.unnamedFunctions.isEmpty {
                let insertUnnamed = try db.cachedStatement(sql: "INSERT OR IGNORE INTO unnamed_functions(function_id, build_id, file_offset) VALUES (?, ?, ?)")
                for unnamed in window.unnamedFunctions {
                    try insertUnnamed.execute(arguments: [functionIDs[Int(unnamed.function)], unnamed.buildID, Int64(bitPattern: unnamed.fileOffset)])
                }
            }

            let insertStack = try db.cachedStatement(sql: "INSERT OR IGNORE INTO stacks(hash, frames) VALUES (?, ?)")
            let selectStack = try db.cachedStatement(sql: "SELECT id FROM stacks WHERE hash = ?")
            var stackIDs: [Int64] = []
            stackIDs.reserveCapacity(window.stacks.count)
            for local in window.stacks {
                let frames = local.map { functionIDs[Int($0)] }
                if let id = cache.stack(frames) ?? newStacks[frames] { stackIDs.append(id); continue }
                let encoded = StackFrames.encode(frames)
                let hash = Data(SHA256.hash(encoded))
                try insertStack.execute(arguments: [hash, Data(encoded)])
                let id = try Int64.fetchOne(selectStack, arguments: [hash])!
                newStacks[frames] = id
                stackIDs.append(id)
            }

            var merged: [Int64: StackValue] = [:]
            for (i, value) in window.values.enumerated() { merged[stackIDs[i], default: .zero].add(value) }
            let blob = WindowBlob.encode(merged.map { ($0.key, $0.value) })
            try db.execute(sql: """
                INSERT INTO windows(series_id, start_ns, end_ns, samples, cpu_ns, resolution_ns, stacks) VALUES (?, ?, ?, ?, ?, 0, ?)
                """, arguments: [seriesID, window.startNanos, window.endNanos, window.total.samples, window.total.cpuNanos, Data(blob)])
            let windowID = db.lastInsertedRowID
            try db.execute(sql: "INSERT INTO window_keys(key, window_id) VALUES (?, ?)", arguments: [window.key, windowID])
            let insertSpan = try db.cachedStatement(sql: """
                INSERT INTO span_samples(window_id, stack_id, span_id, trace_id, samples, cpu_ns) VALUES (?, ?, ?, ?, ?, ?)
                """)
            for row in window.spanValues {
                try insertSpan.execute(arguments: [windowID, stackIDs[Int(row.stack)], row.spanID, row.traceID, row.value.samples, row.value.cpuNanos])
            }
            return (.stored, newFunctions, newStacks, newSeries)
        }
        cache.remember(functions: result.1, stacks: result.2, series: result.3)
        return result.0
    }

    public func insert(spans: [SpanRecord]) async throws {
        guard !spans.isEmpty else { return }
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO spans(trace_id, span_id, parent_span_id, name, service, kind, start_ns, end_ns,
                    status_code, status_message, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for s in spans {
                try statement.execute(arguments: [s.traceID, s.spanID, s.parentSpanID, s.name, s.service, s.kind,
                                                  s.startNanos, s.endNanos, s.statusCode, s.statusMessage, s.attributesJSON])
            }
        }
    }

    // MARK: Queries

    public func services() async throws -> [ServiceSummary] {
        try await pool.read { db in
            var byName: [String: ServiceSummary] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT s.service, count(*), min(w.start_ns), max(w.end_ns) FROM windows w JOIN series s ON s.id = w.series_id GROUP BY s.service
                """) {
                let name: String = row[0]
                byName[name] = ServiceSummary(name: name, windows: row[1], firstNanos: row[2], lastNanos: row[3], spans: 0)
            }
            for row in try Row.fetchAll(db, sql: "SELECT service, count(*), min(start_ns), max(end_ns) FROM spans GROUP BY service") {
                let name: String = row[0]
                if byName[name] == nil { byName[name] = ServiceSummary(name: name, windows: 0, firstNanos: row[2], lastNanos: row[3], spans: 0) }
                byName[name]!.spans = row[1]
            }
            return byName.values.sorted { $0.name < $1.name }
        }
    }

    public func series(service: String?) async throws -> [SeriesRecord] {
        try await pool.read { db in
            let rows = if let service {
                try Row.fetchAll(db, sql: "SELECT id, service, labels FROM series WHERE service = ?", arguments: [service])
            } else {
                try Row.fetchAll(db, sql: "SELECT id, service, labels FROM series")
            }
            return rows.map { SeriesRecord(id: $0[0], service: $0[1], labels: LabelSet(canonicalJSON: $0[2])) }
        }
    }

    public func seriesExtents(service: String) async throws -> [SeriesExtent] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.id, s.service, s.labels, min(w.start_ns), max(w.end_ns), count(*) FROM series s JOIN windows w ON w.series_id = s.id
                WHERE s.service = ? GROUP BY s.id, s.service, s.labels
                """, arguments: [service]).map {
                SeriesExtent(series: SeriesRecord(id: $0[0], service: $0[1], labels: LabelSet(canonicalJSON: $0[2])),
                             firstNanos: $0[3], lastNanos: $0[4], windows: $0[5])
            }
        }
    }

    private static func inList(_ count: Int) -> String {
        "(" + Array(repeating: "?", count: count).joined(separator: ",") + ")"
    }

    public func mergedStacks(series: [Int64], range: TimeRange) async throws -> (stacks: [Int64: StackValue], windows: Int) {
        guard !series.isEmpty else { return ([:], 0) }
        return try await pool.read { db in
            var totals: [Int64: StackValue] = [:]
            var windows = 0
            let sql = "SELECT stacks FROM windows WHERE series_id IN \(Self.inList(series.count)) AND start_ns >= ? AND start_ns < ? AND end_ns > ?"
            var arguments = StatementArguments(series)
            arguments += [range.from - TimeRange.maxWindowNanos, range.until, range.from]
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try cursor.next() {
                windows += 1
                try row.withUnsafeData(atIndex: 0) { data in
                    guard let data else { return }
                    try data.withUnsafeBytes { raw in try WindowBlob.add(raw, into: &totals) }
                }
            }
            return (totals, windows)
        }
    }

    public func windowTotals(series: [Int64], range: TimeRange) async throws -> [WindowTotal] {
        guard !series.isEmpty else { return [] }
        return try await pool.read { db in
            var arguments = StatementArguments(series)
            arguments += [range.from - TimeRange.maxWindowNanos, range.until, range.from]
            return try Row.fetchAll(db, sql: """
                SELECT start_ns, end_ns, samples, cpu_ns FROM windows
                WHERE series_id IN \(Self.inList(series.count)) AND start_ns >= ? AND start_ns < ? AND end_ns > ? ORDER BY start_ns
                """, arguments: arguments).map {
                WindowTotal(startNanos: $0[0], endNanos: $0[1], value: StackValue(samples: $0[2], cpuNanos: $0[3]))
            }
        }
    }

    public func spanSamples(_ filter: SpanSampleFilter) async throws -> [SpanSampleRow] {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments = StatementArguments()
            if let series = filter.series {
                if series.isEmpty { return [] }
                conditions.append("w.series_id IN \(Self.inList(series.count))")
                arguments += StatementArguments(series)
            }
            if let range = filter.range {
                conditions.append("w.start_ns >= ? AND w.start_ns < ? AND w.end_ns > ?")
                arguments += [range.from - TimeRange.maxWindowNanos, range.until, range.from]
            }
            if let spanIDs = filter.spanIDs {
                if spanIDs.isEmpty { return [] }
                conditions.append("p.span_id IN \(Self.inList(spanIDs.count))")
                arguments += StatementArguments(spanIDs)
            }
            if let traceID = filter.traceID {
                conditions.append("p.trace_id = ?")
                arguments += [traceID]
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            return try Row.fetchAll(db, sql: """
                SELECT p.stack_id, p.span_id, p.trace_id, sum(p.samples), sum(p.cpu_ns)
                FROM span_samples p JOIN windows w ON w.id = p.window_id \(whereClause)
                GROUP BY p.stack_id, p.span_id, p.trace_id
                """, arguments: arguments).map {
                SpanSampleRow(stackID: $0[0], spanID: $0[1], traceID: $0[2], value: StackValue(samples: $0[3], cpuNanos: $0[4]))
            }
        }
    }

    public func stackFrames(_ ids: [Int64]) async throws -> [Int64: [Int64]] {
        guard !ids.isEmpty else { return [:] }
        return try await pool.read { db in
            var result: [Int64: [Int64]] = [:]
            for chunk in stride(from: 0, to: ids.count, by: 500) {
                let part = Array(ids[chunk..<min(chunk + 500, ids.count)])
                let cursor = try Row.fetchCursor(db, sql: "SELECT id, frames FROM stacks WHERE id IN \(Self.inList(part.count))", arguments: StatementArguments(part))
                while let row = try cursor.next() {
                    let id: Int64 = row[0]
                    result[id] = try row.withUnsafeData(atIndex: 1) { data in data.map { StackFrames.decode($0) } ?? [] }
                }
            }
            return result
        }
    }

    public func functionNames(_ ids: [Int64]) async throws -> [Int64: FunctionName] {
        guard !ids.isEmpty else { return [:] }
        return try await pool.read { db in
            var result: [Int64: FunctionName] = [:]
            for chunk in stride(from: 0, to: ids.count, by: 500) {
                let part = Array(ids[chunk..<min(chunk + 500, ids.count)])
                for row in try Row.fetchAll(db, sql: """
                    SELECT f.id, coalesce(l.name, f.name), coalesce(l.file, f.file), coalesce(l.start_line, f.start_line)
                    FROM functions f LEFT JOIN late_names l ON l.function_id = f.id WHERE f.id IN \(Self.inList(part.count))
                    """, arguments: StatementArguments(part)) {
                    result[row[0]] = FunctionName(name: row[1], file: row[2], line: row[3])
                }
            }
            return result
        }
    }

    public func functionIDs(named name: String) async throws -> [Int64] {
        try await pool.read { db in
            try Int64.fetchAll(db, sql: """
                SELECT id FROM functions WHERE name = ? AND id NOT IN (SELECT function_id FROM late_names)
                UNION SELECT function_id FROM late_names WHERE name = ?
                """, arguments: [name, name])
        }
    }

    public func unnamedFunctions(buildID: String) async throws -> [(id: Int64, fileOffset: UInt64)] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT function_id, file_offset FROM unnamed_functions
                WHERE build_id = ? AND function_id NOT IN (SELECT function_id FROM late_names)
                """, arguments: [buildID]).map { (id: $0[0], fileOffset: UInt64(bitPattern: $0[1])) }
        }
    }

    public func nameFunctions(_ names: [Int64: FunctionName]) async throws {
        guard !names.isEmpty else { return }
        try await pool.write { db in
            let insert = try db.cachedStatement(sql: "INSERT OR REPLACE INTO late_names(function_id, name, file, start_line) VALUES (?, ?, ?, ?)")
            for (id, name) in names { try insert.execute(arguments: [id, name.name, name.file, name.line]) }
        }
    }

    private static func span(_ row: Row) -> SpanRecord {
        SpanRecord(traceID: row[0], spanID: row[1], parentSpanID: row[2], name: row[3], service: row[4], kind: row[5],
                   startNanos: row[6], endNanos: row[7], statusCode: row[8], statusMessage: row[9], attributesJSON: row[10])
    }

    private static let spanColumns = "trace_id, span_id, parent_span_id, name, service, kind, start_ns, end_ns, status_code, status_message, attributes"

    public func spans(traceID: String) async throws -> [SpanRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.spanColumns) FROM spans WHERE trace_id = ? ORDER BY start_ns", arguments: [traceID]).map(Self.span)
        }
    }

    public func spans(spanIDs: [String]) async throws -> [SpanRecord] {
        guard !spanIDs.isEmpty else { return [] }
        return try await pool.read { db in
            var result: [SpanRecord] = []
            for chunk in stride(from: 0, to: spanIDs.count, by: 500) {
                let part = Array(spanIDs[chunk..<min(chunk + 500, spanIDs.count)])
                result += try Row.fetchAll(db, sql: "SELECT \(Self.spanColumns) FROM spans WHERE span_id IN \(Self.inList(part.count))",
                                           arguments: StatementArguments(part)).map(Self.span)
            }
            return result
        }
    }

    public func recentTraceIDs(service: String?, range: TimeRange, limit: Int) async throws -> [String] {
        try await pool.read { db in
            var arguments = StatementArguments()
            var condition = "start_ns < ? AND end_ns > ?"
            arguments += [range.until, range.from]
            if let service {
                condition += " AND service = ?"
                arguments += [service]
            }
            arguments += [limit]
            return try String.fetchAll(db, sql: """
                SELECT trace_id FROM spans WHERE \(condition) GROUP BY trace_id ORDER BY min(start_ns) DESC, trace_id LIMIT ?
                """, arguments: arguments)
        }
    }

    public func spans(traceIDs: [String]) async throws -> [SpanRecord] {
        guard !traceIDs.isEmpty else { return [] }
        return try await pool.read { db in
            var result: [SpanRecord] = []
            for chunk in stride(from: 0, to: traceIDs.count, by: 500) {
                let part = Array(traceIDs[chunk..<min(chunk + 500, traceIDs.count)])
                result += try Row.fetchAll(db, sql: "SELECT \(Self.spanColumns) FROM spans WHERE trace_id IN \(Self.inList(part.count)) ORDER BY start_ns",
                                           arguments: StatementArguments(part)).map(Self.span)
            }
            return result
        }
    }

    public func traceTotals(traceIDs: [String]) async throws -> [String: StackValue] {
        guard !traceIDs.isEmpty else { return [:] }
        return try await pool.read { db in
            var result: [String: StackValue] = [:]
            for chunk in stride(from: 0, to: traceIDs.count, by: 500) {
                let part = Array(traceIDs[chunk..<min(chunk + 500, traceIDs.count)])
                for row in try Row.fetchAll(db, sql: """
                    SELECT trace_id, sum(samples), sum(cpu_ns) FROM span_samples WHERE trace_id IN \(Self.inList(part.count)) GROUP BY trace_id
                    """, arguments: StatementArguments(part)) {
                    result[row[0]] = StackValue(samples: row[1], cpuNanos: row[2])
                }
            }
            return result
        }
    }

    // MARK: Maintenance

    public func deleteOlder(than before: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM span_samples WHERE window_id IN (SELECT id FROM windows WHERE end_ns < ?)", arguments: [before])
            try db.execute(sql: "DELETE FROM window_keys WHERE window_id IN (SELECT id FROM windows WHERE end_ns < ?)", arguments: [before])
            try db.execute(sql: "DELETE FROM windows WHERE end_ns < ?", arguments: [before])
            let deleted = db.changesCount
            try db.execute(sql: "DELETE FROM spans WHERE end_ns < ?", arguments: [before])
            return deleted
        }
    }

    public func downsample(before: Int64, resolution: Int64) async throws -> Int {
        guard resolution > 0 else { return 0 }
        return try await pool.write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, series_id, start_ns, end_ns, samples, cpu_ns, stacks FROM windows
                WHERE start_ns < ? AND resolution_ns < ? ORDER BY series_id, start_ns LIMIT 20000
                """, arguments: [before, resolution])
            var groups: [Downsampler.Key: [Downsampler.Window]] = [:]
            for row in rows {
                let window = Downsampler.Window(id: row[0], series: row[1], start: row[2], end: row[3],
                                                value: StackValue(samples: row[4], cpuNanos: row[5]), blob: [UInt8](row[6] as Data))
                groups[Downsampler.key(window, resolution: resolution), default: []].append(window)
            }
            var merged = 0
            for (_, windows) in groups {
                let combined = try Downsampler.merge(windows)
                try db.execute(sql: """
                    INSERT INTO windows(series_id, start_ns, end_ns, samples, cpu_ns, resolution_ns, stacks) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [combined.series, combined.start, combined.end, combined.value.samples, combined.value.cpuNanos, resolution, Data(combined.blob)])
                let id = db.lastInsertedRowID
                let ids = windows.map(\.id)
                for chunk in stride(from: 0, to: ids.count, by: 500) {
                    let part = Array(ids[chunk..<min(chunk + 500, ids.count)])
                    var arguments: StatementArguments = [id]
                    arguments += StatementArguments(part)
                    try db.execute(sql: "UPDATE span_samples SET window_id = ? WHERE window_id IN \(Self.inList(part.count))", arguments: arguments)
                    try db.execute(sql: "UPDATE window_keys SET window_id = ? WHERE window_id IN \(Self.inList(part.count))", arguments: arguments)
                    try db.execute(sql: "DELETE FROM windows WHERE id IN \(Self.inList(part.count))", arguments: StatementArguments(part))
                }
                merged += windows.count - 1
            }
            return merged
        }
    }

    public func counts() async throws -> StorageCounts {
        try await pool.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT (SELECT count(*) FROM windows), (SELECT coalesce(sum(samples), 0) FROM windows), (SELECT count(*) FROM stacks),
                       (SELECT count(*) FROM functions), (SELECT count(*) FROM spans)
                """)!
            return StorageCounts(windows: row[0], samples: row[1], stacks: row[2], functions: row[3], spans: row[4])
        }
    }

    public func check() async throws {
        _ = try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
    }

    /// SQLite's own consistency check of every page ("ok" when healthy); slow on big databases.
    public func integrityCheck() async throws -> String {
        try await pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }

    public func close() async throws {
        try pool.close()
    }
}

/// A problem starting the store, told in one line that says what to do.
public struct StoreSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
