import FlareFlameGraph
import FlareProfile
import Synchronization

/// Every query the viewer and the CLI need, on top of any `ProfileStorage`:
/// merges, flame trees, top functions, pprof, diffs, traces with CPU per span,
/// and the spans that spent most in a function.
public final class QueryEngine: Sendable {
    public let storage: any ProfileStorage
    /// Stack frames and function names never change once stored: cache them.
    private let frameCache = Mutex<[Int64: [Int64]]>([:])
    private let nameCache = Mutex<[Int64: FunctionName]>([:])
    private static let cacheLimit = 1_000_000

    public init(storage: any ProfileStorage) { self.storage = storage }

    // MARK: Merging

    /// The series of the selection's service that match its selector; throws
    /// 404 for a service nothing was stored for.
    func seriesIDs(_ selection: Selection) async throws -> [Int64]? {
        guard let service = selection.service else { return nil }
        let all = try await storage.series(service: service)
        guard !all.isEmpty else {
            throw StoreError.notFound("unknown service \(JSONText.quoted(service)): no profiles were stored for it; GET /api/v1/services lists the services")
        }
        return all.filter { selection.selector.matches($0.labels) }.map(\.id)
    }

    public func merge(_ selection: Selection) async throws -> MergedStacks {
        let series = try await seriesIDs(selection)
        if selection.isSpanRestricted {
            let rows = try await storage.spanSamples(SpanSampleFilter(series: series, range: selection.range,
                                                                       spanIDs: selection.spanIDs, traceID: selection.traceID))
            var stacks: [Int64: StackValue] = [:]
            for row in rows { stacks[row.stackID, default: .zero].add(row.value) }
            return MergedStacks(stacks: stacks, windows: 0)
        }
        guard let series, let range = selection.range else {
            throw StoreError.badRequest("a service and a time range are needed unless span_id or trace_id is given")
        }
        let (stacks, windows) = try await storage.mergedStacks(series: series, range: range)
        return MergedStacks(stacks: stacks, windows: windows)
    }

    func frames(_ ids: some Collection<Int64>) async throws -> [Int64: [Int64]] {
        var result: [Int64: [Int64]] = [:]
        var missing: [Int64] = []
        frameCache.withLock { cache in
            for id in ids { if let f = cache[id] { result[id] = f } else { missing.append(id) } }
        }
        if !missing.isEmpty {
            let fetched = try await storage.stackFrames(missing)
            frameCache.withLock { cache in
                if cache.count + fetched.count > Self.cacheLimit { cache = [:] }
                cache.merge(fetched) { a, _ in a }
            }
            result.merge(fetched) { a, _ in a }
        }
        return result
    }

    /// Forgets the names read so far: functions were named late.
    func forgetNames() { nameCache.withLock { $0 = [:] } }

    func names(_ ids: some Collection<Int64>) async throws -> [Int64: FunctionName] {
        var result: [Int64: FunctionName] = [:]
        var missing: [Int64] = []
        nameCache.withLock { cache in
            for id in ids { if let n = cache[id] { result[id] = n } else { missing.append(id) } }
        }
        if !missing.isEmpty {
            let fetched = try await storage.functionNames(missing)
            nameCache.withLock { cache in
                if cache.count + fetched.count > Self.cacheLimit { cache = [:] }
                cache.merge(fetched) { a, _ in a }
            }
            result.merge(fetched) { a, _ in a }
        }
        return result
    }

    // MARK: Flame graph

    public struct FlameGraph: Sendable {
        public var tree: FlameTree
        public var names: [Int64: FunctionName]
        public var kept: [Int32]
        public var windows: Int
        public var total: StackValue
    }

    public func flameGraph(_ selection: Selection, value: ValueKind, maxNodes: Int) async throws -> FlameGraph {
        let merged = try await merge(selection)
        let frames = try await frames(merged.stacks.keys)
        var tree = FlameTree(columns: 1)
        for (id, v) in merged.stacks { tree.add(frames: frames[id] ?? [], value: Double(value.pick(v)), column: 0) }
        let kept = tree.keptNodes(maxNodes: maxNodes)
        let names = try await names(Set(kept.map { tree.nodes[Int($0)].function }.filter { $0 >= 0 }))
        return FlameGraph(tree: tree, names: names, kept: kept, windows: merged.windows, total: merged.total)
    }

    // MARK: Top functions

    public struct FunctionRow: Sendable {
        public var function: FunctionName
        public var selfValue: StackValue
        public var totalValue: StackValue
    }

    /// Self and total per function; a function that recurses counts once per stack.
    public func topFunctions(_ merged: MergedStacks) async throws -> [FunctionRow] {
        let frames = try await frames(merged.stacks.keys)
        var selfValues: [Int64: StackValue] = [:]
        var totalValues: [Int64: StackValue] = [:]
        for (id, v) in merged.stacks {
            let f = frames[id] ?? []
            if let leaf = f.first { selfValues[leaf, default: .zero].add(v) }
            for function in Set(f) { totalValues[function, default: .zero].add(v) }
        }
        let names = try await names(totalValues.keys)
        return totalValues.map { id, total in
            FunctionRow(function: names[id] ?? FunctionName(name: "?", file: ""), selfValue: selfValues[id] ?? .zero, totalValue: total)
        }
    }

    // MARK: pprof

    /// The merged selection as a pprof profile: one function and one location per
    /// stored function, sample types samples/count and cpu/nanoseconds.
    public func pprof(_ merged: MergedStacks) async throws -> Profile {
        let frames = try await frames(merged.stacks.keys)
        let names = try await names(Set(frames.values.joined()))
        let total = merged.total
        let period = total.samples > 0 ? total.cpuNanos / total.samples : 0
        var builder = ProfileBuilder.cpuProfile(periodNanos: period, timeNanos: 0, durationNanos: 0)
        var locations: [Int64: UInt64] = [:]
        for (id, value) in merged.stacks.sorted(by: { $0.key < $1.key }) {
            var locationIDs: [UInt64] = []
            for function in frames[id] ?? [] {
                if let location = locations[function] { locationIDs.append(location); continue }
                let name = names[function] ?? FunctionName(name: "?", file: "")
                let functionID = builder.function(name: name.name, file: name.file)
                let location = builder.location(mappingID: 0, address: 0, lines: [Profile.Line(functionID: functionID)])
                locations[function] = location
                locationIDs.append(location)
            }
            builder.addSample(locationIDs: locationIDs, values: [value.samples, value.cpuNanos], labels: [])
        }
        return builder.profile
    }

    // MARK: Diff

    public struct Diff: Sendable {
        public var stacks: StackDiff
        public var names: [Int64: FunctionName]
        public var kept: [Int32]
        public var totalA: Int64
        public var totalB: Int64
    }

    public func diff(_ a: Selection, _ b: Selection, value: ValueKind, normalized: Bool, maxNodes: Int, limit: Int) async throws -> Diff {
        let mergedA = try await merge(a)
        let mergedB = try await merge(b)
        let frames = try await frames(Set(mergedA.stacks.keys).union(mergedB.stacks.keys))
        func side(_ merged: MergedStacks) -> [(frames: [Int64], value: Double)] {
            merged.stacks.map { (frames: frames[$0.key] ?? [], value: Double(value.pick($0.value))) }
        }
        let stacks = StackDiff(a: side(mergedA), b: side(mergedB), normalized: normalized)
        let kept = stacks.tree.keptNodes(maxNodes: maxNodes)
        let ranked = stacks.rankedBySelfDelta().prefix(limit).map(\.function)
        let names = try await names(Set(ranked).union(kept.map { stacks.tree.nodes[Int($0)].function }.filter { $0 >= 0 }))
        return Diff(stacks: stacks, names: names, kept: kept, totalA: value.pick(mergedA.total), totalB: value.pick(mergedB.total))
    }

    // MARK: Versions

    public struct VersionSpan: Sendable, Equatable {
        public var version: String
        public var firstNanos: Int64
        public var lastNanos: Int64
        public var windows: Int64
    }

    /// The label that names a deploy.
    public static let versionLabel = ProfileIngest.versionLabel

    /// The versions of `service` (its series' `service.version` labels), each
    /// with the first and last time it was seen, oldest first; throws 404 for
    /// a service nothing was stored for.
    public func versions(service: String) async throws -> [VersionSpan] {
        let extents = try await storage.seriesExtents(service: service)
        guard !extents.isEmpty else {
            throw StoreError.notFound("unknown service \(JSONText.quoted(service)): no profiles were stored for it; GET /api/v1/services lists the services")
        }
        var byVersion: [String: VersionSpan] = [:]
        for extent in extents {
            guard let version = extent.series.labels[Self.versionLabel] else { continue }
            if var span = byVersion[version] {
                span.firstNanos = min(span.firstNanos, extent.firstNanos)
                span.lastNanos = max(span.lastNanos, extent.lastNanos)
                span.windows += extent.windows
                byVersion[version] = span
            } else {
                byVersion[version] = VersionSpan(version: version, firstNanos: extent.firstNanos, lastNanos: extent.lastNanos, windows: extent.windows)
            }
        }
        return byVersion.values.sorted { ($0.firstNanos, $0.lastNanos, $0.version) < ($1.firstNanos, $1.lastNanos, $1.version) }
    }

    // MARK: Traces

    public struct TraceSpan: Sendable {
        public var span: SpanRecord
        public var selfValue: StackValue
        public var totalValue: StackValue
        public var depth: Int
    }

    public struct TraceCPU: Sendable {
        public var spans: [TraceSpan]
        /// Samples labelled with a span id that was never received as a span.
        public var unknownSpans: [(spanID: String, value: StackValue)]
    }

    public func trace(_ traceID: String) async throws -> TraceCPU {
        let spans = try await storage.spans(traceID: traceID)
        let rows = try await storage.spanSamples(SpanSampleFilter(traceID: traceID))
        guard !spans.isEmpty || !rows.isEmpty else {
            throw StoreError.notFound("unknown trace \(traceID): no spans or samples were stored for it")
        }
        var selfBySpan: [String: StackValue] = [:]
        for row in rows { selfBySpan[row.spanID, default: .zero].add(row.value) }
        let known = Set(spans.map(\.spanID))
        var children: [String: [String]] = [:]
        for span in spans where !span.parentSpanID.isEmpty && known.contains(span.parentSpanID) {
            children[span.parentSpanID, default: []].append(span.spanID)
        }
        // Totals bottom-up over the span tree, iteratively and cycle-safe
        // (parent links come from clients).
        var total: [String: StackValue] = [:]
        var depth: [String: Int] = [:]
        let roots = spans.filter { $0.parentSpanID.isEmpty || !known.contains($0.parentSpanID) }.map(\.spanID)
        var visited = Set<String>()
        var order: [String] = []
        var stack = roots.map { ($0, 0) }
        while let (id, d) = stack.popLast() {
            guard visited.insert(id).inserted else { continue }
            order.append(id)
            depth[id] = d
            for child in children[id] ?? [] { stack.append((child, d + 1)) }
        }
        for id in order.reversed() {
            var t = selfBySpan[id] ?? .zero
            for child in children[id] ?? [] where visited.contains(child) { t.add(total[child] ?? .zero) }
            total[id] = t
        }
        let result = spans.map { span in
            TraceSpan(span: span, selfValue: selfBySpan[span.spanID] ?? .zero, totalValue: total[span.spanID] ?? selfBySpan[span.spanID] ?? .zero,
                      depth: depth[span.spanID] ?? 0)
        }
        let unknown = selfBySpan.filter { !known.contains($0.key) && !$0.key.isEmpty }.map { (spanID: $0.key, value: $0.value) }
            .sorted { $0.value.samples > $1.value.samples }
        return TraceCPU(spans: result, unknownSpans: unknown)
    }

    // MARK: Recent traces

    public struct TraceSummary: Sendable, Equatable {
        public var traceID: String
        /// The earliest span without a parent in the trace (or the earliest span).
        public var rootName: String
        public var rootService: String
        public var startNanos: Int64
        public var durationNanos: Int64
        public var spanCount: Int
        public var value: StackValue
    }

    /// The most recently started traces with a span of `service` in `range`,
    /// with the CPU their samples carry.
    public func recentTraces(service: String?, range: TimeRange, limit: Int) async throws -> [TraceSummary] {
        let ids = try await storage.recentTraceIDs(service: service, range: range, limit: limit)
        var byTrace: [String: [SpanRecord]] = [:]
        for span in try await storage.spans(traceIDs: ids) { byTrace[span.traceID, default: []].append(span) }
        let totals = try await storage.traceTotals(traceIDs: ids)
        return ids.compactMap { id in
            guard let spans = byTrace[id], !spans.isEmpty else { return nil }
            let known = Set(spans.map(\.spanID))
            let roots = spans.filter { $0.parentSpanID.isEmpty || !known.contains($0.parentSpanID) }
            let root = (roots.isEmpty ? spans : roots).min { ($0.startNanos, $0.spanID) < ($1.startNanos, $1.spanID) }!
            let start = spans.map(\.startNanos).min()!, end = spans.map(\.endNanos).max()!
            return TraceSummary(traceID: id, rootName: root.name, rootService: root.service, startNanos: start,
                                durationNanos: max(0, end - start), spanCount: spans.count, value: totals[id] ?? .zero)
        }
    }

    // MARK: Function → spans

    public struct SpanRank: Sendable {
        public var spanID: String
        public var traceID: String
        public var selfValue: StackValue
        public var totalValue: StackValue
        public var span: SpanRecord?
    }

    public struct TraceRank: Sendable {
        public var traceID: String
        public var selfValue: StackValue
        public var totalValue: StackValue
    }

    /// The spans and traces whose samples spent most in `function` (by name).
    public func spansSpending(in function: String, selection: Selection, value: ValueKind, limit: Int) async throws -> (spans: [SpanRank], traces: [TraceRank]) {
        let series = try await seriesIDs(selection)
        let functionIDs = Set(try await storage.functionIDs(named: function))
        guard !functionIDs.isEmpty else {
            throw StoreError.notFound("unknown function \(JSONText.quoted(function)): no stored stack contains it")
        }
        let rows = try await storage.spanSamples(SpanSampleFilter(series: series, range: selection.range))
        let frames = try await frames(Set(rows.map(\.stackID)))
        var bySpan: [String: SpanRank] = [:]
        var byTrace: [String: TraceRank] = [:]
        for row in rows {
            let f = frames[row.stackID] ?? []
            guard f.contains(where: functionIDs.contains) else { continue }
            let isSelf = f.first.map(functionIDs.contains) ?? false
            let key = row.traceID + "/" + row.spanID
            var rank = bySpan[key] ?? SpanRank(spanID: row.spanID, traceID: row.traceID, selfValue: .zero, totalValue: .zero, span: nil)
            rank.totalValue.add(row.value)
            if isSelf { rank.selfValue.add(row.value) }
            bySpan[key] = rank
            if !row.traceID.isEmpty {
                var t = byTrace[row.traceID] ?? TraceRank(traceID: row.traceID, selfValue: .zero, totalValue: .zero)
                t.totalValue.add(row.value)
                if isSelf { t.selfValue.add(row.value) }
                byTrace[row.traceID] = t
            }
        }
        var spans = Array(bySpan.values).sorted { (value.pick($0.totalValue), $1.spanID) > (value.pick($1.totalValue), $0.spanID) }
        spans = Array(spans.prefix(limit))
        let records = try await storage.spans(spanIDs: spans.map(\.spanID).filter { !$0.isEmpty })
        var recordByKey: [String: SpanRecord] = [:]
        for r in records { recordByKey[r.traceID + "/" + r.spanID] = r; recordByKey["/" + r.spanID] = recordByKey["/" + r.spanID] ?? r }
        for i in spans.indices {
            spans[i].span = recordByKey[spans[i].traceID + "/" + spans[i].spanID] ?? recordByKey["/" + spans[i].spanID]
        }
        let traces = Array(byTrace.values.sorted { (value.pick($0.totalValue), $1.traceID) > (value.pick($1.totalValue), $0.traceID) }.prefix(limit))
        return (spans, traces)
    }
}
