import FlareFlameGraph
/// Where the store keeps profiles and spans. Two implementations: SQLite in a
/// data directory (the default) and PostgreSQL (several stores, one database).
/// Both keep functions and stacks deduplicated, one stack blob per window, and
/// span/trace ids per sample in their own table.
public protocol ProfileStorage: Sendable {
    /// Stores a window unless a window with the same key was stored before.
    /// Returns only once the window is durable.
    func insert(_ window: PreparedWindow) async throws -> InsertOutcome
    /// Stores spans; a span sent again replaces the earlier copy.
    func insert(spans: [SpanRecord]) async throws

    func services() async throws -> [ServiceSummary]
    /// Every series of a service (or of all services).
    func series(service: String?) async throws -> [SeriesRecord]
    /// Each series of `service` that has windows, with its first window start,
    /// last window end and window count.
    func seriesExtents(service: String) async throws -> [SeriesExtent]
    /// The summed stacks of the windows of `series` that overlap `range`, and how many windows that was.
    func mergedStacks(series: [Int64], range: TimeRange) async throws -> (stacks: [Int64: StackValue], windows: Int)
    func windowTotals(series: [Int64], range: TimeRange) async throws -> [WindowTotal]
    /// Per-span sample rows that match the filter.
    func spanSamples(_ filter: SpanSampleFilter) async throws -> [SpanSampleRow]
    func stackFrames(_ ids: [Int64]) async throws -> [Int64: [Int64]]
    /// Names as queries show them: a function named late (from debug info
    /// that reached the store after its windows) has its late name.
    func functionNames(_ ids: [Int64]) async throws -> [Int64: FunctionName]
    func functionIDs(named name: String) async throws -> [Int64]
    /// The functions in the file with this build-id that have no name yet, with their start in the file.
    func unnamedFunctions(buildID: String) async throws -> [(id: Int64, fileOffset: UInt64)]
    /// Gives functions their late names (debug info for their file arrived).
    func nameFunctions(_ names: [Int64: FunctionName]) async throws
    func spans(traceID: String) async throws -> [SpanRecord]
    func spans(spanIDs: [String]) async throws -> [SpanRecord]
    /// The traces with a span of `service` (any service when nil) overlapping
    /// `range`, the most recently started first.
    func recentTraceIDs(service: String?, range: TimeRange, limit: Int) async throws -> [String]
    func spans(traceIDs: [String]) async throws -> [SpanRecord]
    /// Samples and CPU time labelled with each of these traces.
    func traceTotals(traceIDs: [String]) async throws -> [String: StackValue]

    /// Deletes windows that ended before `before`, and spans that ended before it.
    func deleteOlder(than before: Int64) async throws -> Int
    /// Merges windows that started before `before` into one window per series per
    /// `resolution`-long bucket. Returns how many windows were merged away.
    func downsample(before: Int64, resolution: Int64) async throws -> Int
    /// Counts for metrics and tests.
    func counts() async throws -> StorageCounts
    /// Fails if the database cannot be reached or is damaged.
    func check() async throws
    func close() async throws
}

public struct ServiceSummary: Sendable, Equatable {
    public var name: String
    public var windows: Int64
    public var firstNanos: Int64
    public var lastNanos: Int64
    public var spans: Int64
}

public struct SeriesRecord: Sendable, Equatable {
    public var id: Int64
    public var service: String
    public var labels: LabelSet
}

public struct SeriesExtent: Sendable, Equatable {
    public var series: SeriesRecord
    public var firstNanos: Int64
    public var lastNanos: Int64
    public var windows: Int64
}

public struct WindowTotal: Sendable, Equatable {
    public var startNanos: Int64
    public var endNanos: Int64
    public var value: StackValue
}

public struct SpanSampleFilter: Sendable {
    /// nil: any series.
    public var series: [Int64]?
    public var range: TimeRange?
    public var spanIDs: [String]?
    public var traceID: String?
    public init(series: [Int64]? = nil, range: TimeRange? = nil, spanIDs: [String]? = nil, traceID: String? = nil) {
        self.series = series; self.range = range; self.spanIDs = spanIDs; self.traceID = traceID
    }
}

public struct SpanSampleRow: Sendable, Equatable {
    public var stackID: Int64
    public var spanID: String
    public var traceID: String
    public var value: StackValue
}

public struct StorageCounts: Sendable, Equatable {
    public var windows: Int64
    public var samples: Int64
    public var stacks: Int64
    public var functions: Int64
    public var spans: Int64
}
