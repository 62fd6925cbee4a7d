import FlareFlameGraph
import FlareProfile
import Foundation
import Testing
@testable import FlareStore

/// The storage contract, run against SQLite and a real PostgreSQL.
@Suite("Storage", .serialized)
struct StorageTests {
    typealias S = StoreTestSupport.Sample
    static let t0: Int64 = 1_700_000_000_000_000_000
    static let tenSeconds: Int64 = 10_000_000_000
    static let span1 = "00000000000000a1", span2 = "00000000000000a2", span3 = "00000000000000a3"
    static let trace1 = "0000000000000000000000000000bb01"

    static func samples(_ i: Int) -> [S] {
        [
            S(stack: ["main", "handle", "parse"], count: 10 + Int64(i)),
            S(stack: ["main", "handle", "render"], count: 5, spanID: span1, traceID: trace1),
            S(stack: ["main", "handle", "render", "escape"], count: 3, spanID: span2, traceID: trace1),
            S(stack: ["main", "gc"], count: 2),
        ]
    }

    @Test("stores windows once and merges them with exact per-function totals", arguments: Backend.allCases)
    func mergeTotals(backend: Backend) async throws {
        guard let storage = try await backend.make() else { return }
        defer { Task { try? await storage.close() } }
        var expected: [String: Int64] = [:]
        for i in 0..<5 {
            let window = try StoreTestSupport.window(Self.samples(i), key: "w\(i)", start: Self.t0 + Int64(i) * Self.tenSeconds)
            #expect(try await storage.insert(window) == .stored)
            for (name, value) in StoreTestSupport.selfTotals(StoreTestSupport.profile(Self.samples(i))) { expected[name, default: 0] += value }
        }
        // The same window again is stored once.
        #expect(try await storage.insert(try StoreTestSupport.window(Self.samples(0), key: "w0", start: Self.t0)) == .duplicate)

        let engine = QueryEngine(storage: storage)
        let merged = try await engine.merge(Selection(service: "checkout", range: TimeRange(from: Self.t0, until: Self.t0 + 60 * Self.tenSeconds)))
        #expect(merged.windows == 5)
        var selfTotals: [String: Int64] = [:]
        for row in try await engine.topFunctions(merged) where row.selfValue.samples > 0 { selfTotals[row.function.name] = row.selfValue.samples }
        #expect(selfTotals == expected)
        // Each function keeps the line it starts at, for the viewer's file:line.
        for row in try await engine.topFunctions(merged) {
            #expect(row.function.line == StoreTestSupport.startLine(of: row.function.name), "\(row.function)")
        }
        #expect(merged.total.cpuNanos == merged.total.samples * StoreTestSupport.period)

        // Stacks and functions are deduplicated across windows.
        let counts = try await storage.counts()
        #expect(counts.windows == 5)
        #expect(counts.stacks == 4)
        #expect(counts.functions == 6)

        // A range that covers only the first two windows.
        let early = try await engine.merge(Selection(service: "checkout", range: TimeRange(from: Self.t0, until: Self.t0 + 2 * Self.tenSeconds)))
        #expect(early.windows == 2)
    }

    @Test("restricts merges to spans and traces, and walks the span tree", arguments: Backend.allCases)
    func spansAndTraces(backend: Backend) async throws {
        guard let storage = try await backend.make() else { return }
        defer { Task { try? await storage.close() } }
        for i in 0..<3 {
            _ = try await storage.insert(try StoreTestSupport.window(Self.samples(i), key: "w\(i)", start: Self.t0 + Int64(i) * Self.tenSeconds))
        }
        try await storage.insert(spans: [
            SpanRecord(traceID: Self.trace1, spanID: Self.span3, parentSpanID: "", name: "GET /checkout", service: "checkout", kind: 2,
                       startNanos: Self.t0, endNanos: Self.t0 + 30 * Self.tenSeconds),
            SpanRecord(traceID: Self.trace1, spanID: Self.span1, parentSpanID: Self.span3, name: "render", service: "checkout", kind: 1,
                       startNanos: Self.t0 + 1, endNanos: Self.t0 + 100),
            SpanRecord(traceID: Self.trace1, spanID: Self.span2, parentSpanID: Self.span1, name: "escape", service: "checkout", kind: 1,
                       startNanos: Self.t0 + 2, endNanos: Self.t0 + 50, attributesJSON: #"{"k":"<v>"}"#),
        ])
        let engine = QueryEngine(storage: storage)
        let range = TimeRange(from: Self.t0, until: Self.t0 + 60 * Self.tenSeconds)
        let bySpan = try await engine.merge(Selection(service: "checkout", range: range, spanIDs: [Self.span1]))
        #expect(bySpan.total.samples == 15)
        let byTrace = try await engine.merge(Selection(service: nil, range: nil, traceID: Self.trace1))
        #expect(byTrace.total.samples == 24)

        let trace = try await engine.trace(Self.trace1)
        let byID = Dictionary(uniqueKeysWithValues: trace.spans.map { ($0.span.spanID, $0) })
        #expect(byID[Self.span3]?.selfValue.samples == 0)
        #expect(byID[Self.span3]?.totalValue.samples == 24)
        #expect(byID[Self.span1]?.selfValue.samples == 15)
        #expect(byID[Self.span1]?.totalValue.samples == 24)
        #expect(byID[Self.span2]?.totalValue.samples == 9)
        #expect(byID[Self.span2]?.span.attributesJSON == #"{"k":"<v>"}"#)
        #expect(byID[Self.span2]?.depth == 2)

        let (spans, traces) = try await engine.spansSpending(in: "escape", selection: Selection(service: "checkout", range: range), value: .samples, limit: 5)
        #expect(spans.first?.spanID == Self.span2)
        #expect(spans.first?.selfValue.samples == 9)
        #expect(spans.first?.span?.name == "escape")
        #expect(traces.first?.traceID == Self.trace1)
        // A span sent again replaces the first copy.
        try await storage.insert(spans: [SpanRecord(traceID: Self.trace1, spanID: Self.span2, parentSpanID: Self.span1, name: "escape2",
                                                    service: "checkout", kind: 1, startNanos: Self.t0 + 2, endNanos: Self.t0 + 60)])
        #expect(try await storage.spans(traceID: Self.trace1).count == 3)
        #expect(try await storage.spans(spanIDs: [Self.span2]).first?.name == "escape2")
    }

    @Test("functions stored unnamed get late names, seen by every query, and are found by them", arguments: Backend.allCases)
    func lateNames(backend: Backend) async throws {
        guard let storage = try await backend.make() else { return }
        defer { Task { try? await storage.close() } }
        var window = try StoreTestSupport.window([S(stack: ["main", "libx.so+0x1040"], count: 7), S(stack: ["main", "libx.so+0x2000"], count: 3)],
                                                 key: "late", start: Self.t0)
        let buildID = "ab" + String(UUID().uuidString.prefix(8)).lowercased().filter(\.isHexDigit)
        let local = { (name: String) in Int32(window.functions.firstIndex { $0.name == name }!) }
        window.unnamedFunctions = [.init(function: local("libx.so+0x1040"), buildID: buildID, fileOffset: 0x1040),
                                   .init(function: local("libx.so+0x2000"), buildID: buildID, fileOffset: 0x2000)]
        #expect(try await storage.insert(window) == .stored)
        let unnamed = try await storage.unnamedFunctions(buildID: buildID)
        #expect(Set(unnamed.map(\.fileOffset)) == [0x1040, 0x2000])
        let first = try #require(unnamed.first { $0.fileOffset == 0x1040 })
        try await storage.nameFunctions([first.id: FunctionName(name: "compress_block", file: "src/compress.c", line: 88)])
        #expect(try await storage.unnamedFunctions(buildID: buildID).map(\.fileOffset) == [0x2000])
        #expect(try await storage.functionNames([first.id])[first.id] == FunctionName(name: "compress_block", file: "src/compress.c", line: 88))
        #expect(try await storage.functionIDs(named: "compress_block") == [first.id])
        #expect(try await storage.functionIDs(named: "libx.so+0x1040").isEmpty)

        let engine = QueryEngine(storage: storage)
        let merged = try await engine.merge(Selection(service: "checkout", range: TimeRange(from: Self.t0, until: Self.t0 + Self.tenSeconds)))
        let top = Dictionary(try await engine.topFunctions(merged).map { ($0.function.name, $0.selfValue.samples) }, uniquingKeysWith: +)
        #expect(top["compress_block"] == 7 && top["libx.so+0x2000"] == 3 && top["libx.so+0x1040"] == nil, "\(top)")
    }

    @Test("selects series by labels", arguments: Backend.allCases)
    func labels(backend: Backend) async throws {
        guard let storage = try await backend.make() else { return }
        defer { Task { try? await storage.close() } }
        _ = try await storage.insert(try StoreTestSupport.window([S(stack: ["a"], count: 1)], key: "1", labels: [("host.name", "h1"), ("service.version", "1.0")], start: Self.t0))
        _ = try await storage.insert(try StoreTestSupport.window([S(stack: ["a"], count: 2)], key: "2", labels: [("host.name", "h2"), ("service.version", "1.1")], start: Self.t0))
        _ = try await storage.insert(try StoreTestSupport.window([S(stack: ["a"], count: 4)], key: "3", service: "other", start: Self.t0))
        let engine = QueryEngine(storage: storage)
        let range = TimeRange(from: Self.t0, until: Self.t0 + Self.tenSeconds)
        func total(_ selector: String) async throws -> Int64 {
            try await engine.merge(Selection(service: "checkout", selector: try LabelSelector(parsing: selector), range: range)).total.samples
        }
        #expect(try await total("") == 3)
        #expect(try await total(#"{host.name="h1"}"#) == 1)
        #expect(try await total(#"{service.version=~"1\..*", host.name!="h1"}"#) == 2)
        #expect(try await total(#"{host.name="nope"}"#) == 0)
        let services = try await storage.services().map(\.name)
        #expect(services == ["checkout", "other"])
        await #expect(throws: StoreError.self) { try await engine.merge(Selection(service: "missing", range: range)) }
    }

    @Test("retention deletes old windows and downsampling keeps totals", arguments: Backend.allCases)
    func maintenance(backend: Backend) async throws {
        guard let storage = try await backend.make() else { return }
        defer { Task { try? await storage.close() } }
        for i in 0..<12 {
            let samples = [S(stack: ["main", "work"], count: 1 + Int64(i), spanID: Self.span1, traceID: Self.trace1), S(stack: ["main", "idle"], count: 2)]
            _ = try await storage.insert(try StoreTestSupport.window(samples, key: "m\(i)", start: Self.t0 + Int64(i) * Self.tenSeconds))
        }
        let engine = QueryEngine(storage: storage)
        let all = TimeRange(from: Self.t0 - 3600 * 1_000_000_000, until: Self.t0 + 3600 * 1_000_000_000)
        let before = try await engine.merge(Selection(service: "checkout", range: all)).total
        let spanBefore = try await engine.merge(Selection(service: nil, range: nil, traceID: Self.trace1)).total

        // Downsample everything into one-minute windows: 12 ten-second windows become 2 (+1 at a bucket edge at most).
        let merged = try await storage.downsample(before: Self.t0 + 3600 * 1_000_000_000, resolution: 60 * 1_000_000_000)
        #expect(merged >= 9)
        let after = try await engine.merge(Selection(service: "checkout", range: all))
        #expect(after.total == before)
        #expect(after.windows <= 3)
        #expect(try await engine.merge(Selection(service: nil, range: nil, traceID: Self.trace1)).total == spanBefore)
        // Idempotency survives downsampling.
        #expect(try await storage.insert(try StoreTestSupport.window([S(stack: ["x"], count: 1)], key: "m3", start: Self.t0)) == .duplicate)

        // Retention removes windows that ended before the cutoff.
        let deleted = try await storage.deleteOlder(than: Self.t0 + 3600 * 1_000_000_000)
        #expect(deleted >= 2)
        #expect(try await storage.counts().windows == 0)
        #expect(try await engine.merge(Selection(service: nil, range: nil, traceID: Self.trace1)).total == .zero)
    }

    @Test("many windows and concurrent writers keep every window exactly once", arguments: Backend.allCases)
    func concurrentInserts(backend: Backend) async throws {
        guard let storage = try await backend.make() else { return }
        defer { Task { try? await storage.close() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for i in 0..<25 {
                        // Writers share stacks and keys: each key is sent by two writers.
                        let key = "c\((writer % 2) * 25 + i)"
                        let samples = [S(stack: ["main", "w\(i % 7)", "leaf\(i % 3)"], count: 1)]
                        _ = try await storage.insert(try StoreTestSupport.window(samples, key: key, start: Self.t0 + Int64(i) * Self.tenSeconds))
                    }
                }
            }
            try await group.waitForAll()
        }
        let counts = try await storage.counts()
        #expect(counts.windows == 50)
        #expect(counts.samples == 50)
        #expect(counts.stacks == 21)
    }
}
