/// What a query merges: a service's series that match a label selector, over a
/// time range, optionally only the samples of some spans or of one trace.
public struct Selection: Sendable {
    /// nil only with span or trace restriction: then every service's samples count.
    public var service: String?
    public var selector: LabelSelector
    /// nil: any time (a trace query without from/until).
    public var range: TimeRange?
    public var spanIDs: [String]?
    public var traceID: String?

    public init(service: String?, selector: LabelSelector = LabelSelector(), range: TimeRange?, spanIDs: [String]? = nil, traceID: String? = nil) {
        self.service = service; self.selector = selector; self.range = range; self.spanIDs = spanIDs; self.traceID = traceID
    }

    var isSpanRestricted: Bool { spanIDs != nil || traceID != nil }
}

/// Which value a flame graph or table shows.
public enum ValueKind: String, Sendable {
    case samples, cpu

    func pick(_ v: StackValue) -> Int64 { self == .samples ? v.samples : v.cpuNanos }
    var unit: String { self == .samples ? "samples" : "nanoseconds" }
}

/// Stacks summed over a selection, by stack id.
public struct MergedStacks: Sendable {
    public var stacks: [Int64: StackValue]
    public var windows: Int
    public var total: StackValue {
        var t = StackValue.zero
        for v in stacks.values { t.add(v) }
        return t
    }
}
