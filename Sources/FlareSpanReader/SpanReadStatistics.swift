import FlareContextReader

/// What the span reader did over a recording, for the summary and self-metrics.
public struct SpanReadStatistics: Sendable {
    /// Samples labelled with a span.
    public var labelled = 0
    /// Samples whose thread provably ran no span, by reason.
    public var noSpan: [NoSpanReason: Int] = [:]
    /// Samples left unlabelled because the reader could not know, by reason.
    public var unknown: [UnknownReason: Int] = [:]
    /// Processes whose FLARE_SLOTS or OTEL_CTX mapping was invalid, and why.
    public var skippedProcesses: [Int32: String] = [:]
    /// Processes that published a valid FLARE_SLOTS mapping.
    public var processesWithSlots = 0
    /// Delay between each sample's time and the read of its slot, in nanoseconds.
    public var delay = DelayHistogram()

    public init() {}

    public var samples: Int { labelled + noSpan.values.reduce(0, +) + unknown.values.reduce(0, +) }
    /// Samples of threads that published a slot: what the labelled share is measured against.
    public var samplesOfPublishingThreads: Int {
        labelled + unknown.values.reduce(0, +) + (noSpan[.detached] ?? 0) + (noSpan[.noSpanYet] ?? 0)
    }

    mutating func count(_ lookup: SpanLookup) {
        switch lookup {
        case .span: labelled += 1
        case .none(let reason): noSpan[reason, default: 0] += 1
        case .unknown(let reason): unknown[reason, default: 0] += 1
        }
    }
}

/// A log-scale histogram of read delays: buckets of powers of two nanoseconds.
public struct DelayHistogram: Sendable {
    public private(set) var buckets = [Int](repeating: 0, count: 64)
    public private(set) var count = 0
    public private(set) var maximum: UInt64 = 0
    public private(set) var total: UInt64 = 0

    public init() {}

    public mutating func record(_ nanos: UInt64) {
        buckets[nanos == 0 ? 0 : 64 - nanos.leadingZeroBitCount - 1] += 1
        count += 1
        maximum = max(maximum, nanos)
        total &+= nanos
    }

    /// An upper bound of the given quantile (0...1): the top of its bucket.
    public func quantile(_ q: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let target = Int((Double(count) * q).rounded(.up))
        var seen = 0
        for (i, n) in buckets.enumerated() {
            seen += n
            if seen >= max(target, 1) { return min(maximum, i >= 63 ? UInt64.max : (UInt64(1) << UInt64(i + 1)) - 1) }
        }
        return maximum
    }

    public var mean: Double { count > 0 ? Double(total) / Double(count) : 0 }
}
