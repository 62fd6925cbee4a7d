import FlareProfile
import Foundation
import Testing
@testable import FlareStore

/// The real programs around the store: the OpenTelemetry Python SDK, Google's
/// pprof, and `flare record`, all against the real `flare store` binary.
@Suite("Real clients", .serialized)
struct RealClientTests {
    typealias S = StoreTestSupport.Sample

    @Test("the OpenTelemetry Python SDK exports spans that come back with names, ids, times and parents")
    func openTelemetrySDK() async throws {
        guard try StoreTestSupport.requireOrSkip("the OpenTelemetry Python SDK (.build/venv)", available: StoreTestSupport.venvPython() != nil,
                                                 hint: "scripts/test creates .build/venv with opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http"),
              let python = StoreTestSupport.venvPython() else { return }
        let store = try LiveStore(arguments: ["--data-dir", StoreTestSupport.temporaryDirectory("otel"), "--ingest-token", "t0ken"])
        defer { store.stop() }
        let result = try StoreTestSupport.run(python, [StoreTestSupport.clientScript("otel_export.py"), store.baseURL, "t0ken"])
        #expect(result.status == 0, "otel_export.py: \(result.stderr)")
        guard result.status == 0 else { return }
        let sent = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [[String: Any]]
        #expect(sent.count == 4)
        let traceID = sent[0]["trace_id"] as! String
        let trace = try await store.json("/api/v1/traces/\(traceID)")
        let stored = trace["spans"] as? [[String: Any]] ?? []
        #expect(stored.count == sent.count)
        for span in sent {
            let match = stored.first { $0["span_id"] as? String == span["span_id"] as? String }
            #expect(match != nil, "span \(span["name"]!) is missing")
            #expect(match?["name"] as? String == span["name"] as? String)
            #expect(match?["parent_span_id"] as? String == span["parent_span_id"] as? String)
            #expect(match?["start_ns"] as? Int == span["start_ns"] as? Int)
            #expect(match?["end_ns"] as? Int == span["end_ns"] as? Int)
            #expect(match?["service"] as? String == "otel-checkout")
        }
        let root = stored.first { ($0["parent_span_id"] as? String) == "" }
        #expect(root?["name"] as? String == "GET /checkout")
        #expect(root?["kind"] as? Int == 2)
        #expect(((root?["attributes"] as? [String: Any])?["http.route"] as? String) == "/checkout")
        let services = try await store.json("/api/v1/services")
        #expect((services["services"] as? [[String: Any]])?.contains { $0["name"] as? String == "otel-checkout" && $0["spans"] as? Int == 4 } == true)
        #expect(store.stop() == 0, "graceful shutdown: \(store.log)")
    }

    @Test("pprof reads the merged download and its per-function totals equal the ingested sums")
    func pprofTool() async throws {
        guard try StoreTestSupport.requireOrSkip("pprof (.build/tools/pprof)", available: try StoreTestSupport.pprof() != nil,
                                                 hint: "scripts/build-pprof builds it"),
              let pprof = try StoreTestSupport.pprof() else { return }
        let store = try LiveStore(arguments: ["--data-dir", StoreTestSupport.temporaryDirectory("pprof")])
        defer { store.stop() }
        let now = Int64(Date().timeIntervalSince1970) * 1_000_000_000
        var expectedSelf: [String: Int64] = [:]
        var expectedTotal: [String: Int64] = [:]
        var rng = SystemRandomNumberGenerator()
        let names = (0..<40).map { "pkg.Function\($0)" }
        for w in 0..<12 {
            var samples: [S] = []
            for _ in 0..<30 {
                let depth = Int.random(in: 2...8, using: &rng)
                samples.append(S(stack: ["main"] + (0..<depth).map { _ in names.randomElement(using: &rng)! }, count: Int64.random(in: 1...20, using: &rng)))
            }
            let profile = StoreTestSupport.profile(samples, timeNanos: now - Int64(w + 1) * 10_000_000_000)
            for (k, v) in StoreTestSupport.selfTotals(profile) { expectedSelf[k, default: 0] += v }
            for (k, v) in StoreTestSupport.totalTotals(profile) { expectedTotal[k, default: 0] += v }
            let r = try await store.request("/api/v1/profiles?service=pprof-test&window_id=w\(w)", method: "POST", body: Data(profile.gzippedPprof()))
            #expect(r.status == 200)
        }
        let download = try await store.request("/api/v1/pprof?service=pprof-test&from=now-1h&until=now%2B1h")
        #expect(download.status == 200)
        let file = StoreTestSupport.scratch.appendingPathComponent("merged-\(UUID().uuidString.prefix(6)).pb.gz")
        try download.body.write(to: file)
        let top = try StoreTestSupport.run(pprof, ["-top", "-nodecount=100000", "-nodefraction=0", "-edgefraction=0", "-sample_index=samples", file.path])
        #expect(top.status == 0, "pprof: \(top.stderr)")
        var flat: [String: Int64] = [:]
        var cum: [String: Int64] = [:]
        var inTable = false
        for line in top.stdout.split(separator: "\n") {
            if line.contains("flat%") { inTable = true; continue }
            guard inTable else { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, let f = Int64(fields[0]), let c = Int64(fields[3]) else { continue }
            let name = fields[5...].joined(separator: " ")
            if f > 0 { flat[name] = f }
            cum[name] = c
        }
        #expect(flat == expectedSelf, "pprof -top:\n\(top.stdout)")
        #expect(cum == expectedTotal)
    }

    @Test("profiles written by flare record ingest and query back with identical per-function totals")
    func flareRecord() async throws {
        let profilePath = StoreTestSupport.scratch.appendingPathComponent("record-\(UUID().uuidString.prefix(6)).pb.gz").path
        let record = try StoreTestSupport.run(StoreTestSupport.flareBinary, ["record", "-F", "499", "-q", "-o", profilePath, "--",
                                                                            "/bin/sh", "-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"])
        #expect(record.status == 0, "flare record: \(record.stderr)")
        guard record.status == 0 else { return }
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: profilePath)))
        let original = try Profile(pprofFile: bytes)
        #expect(!original.samples.isEmpty)

        let store = try LiveStore(arguments: ["--data-dir", StoreTestSupport.temporaryDirectory("record")])
        defer { store.stop() }
        let r = try await store.request("/api/v1/profiles?service=recorded&window_id=r1&labels=%7Bhost.name%3D%22ci%22%7D", method: "POST", body: Data(bytes))
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))")
        let download = try await store.request("/api/v1/pprof?service=recorded&from=now-1d&until=now%2B1h")
        #expect(download.status == 200)
        let merged = try Profile(pprofFile: [UInt8](download.body))
        #expect(StoreTestSupport.selfTotals(merged) == StoreTestSupport.selfTotals(original))
        #expect(StoreTestSupport.totalTotals(merged) == StoreTestSupport.totalTotals(original))
        let cpu = { (p: Profile) in p.samples.reduce(Int64(0)) { $0 + $1.values[p.valueIndex(named: "cpu")] } }
        #expect(cpu(merged) == cpu(original))

        let top = try await store.json("/api/v1/top?service=recorded&from=now-1d&until=now%2B1h&limit=100000")
        let rows = top["functions"] as? [[String: Any]] ?? []
        var fromAPI: [String: Int64] = [:]
        for row in rows { if let n = row["name"] as? String, let s = row["self"] as? Int, s > 0 { fromAPI[n, default: 0] += Int64(s) } }
        #expect(fromAPI == StoreTestSupport.selfTotals(original))
    }
}
