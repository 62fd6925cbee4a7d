import FlareFlameGraph
import FlareProfile
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import FlareStore

@Suite("HTTP API")
struct HTTPAPITests {
    typealias S = StoreTestSupport.Sample
    typealias H = HTTPTestSupport
    static let t0Seconds: Int64 = 1_700_000_000
    static let span = "1111111111111111", trace = "22222222222222222222222222222222"

    static func pprof(_ samples: [S], second: Int64 = 0) -> [UInt8] {
        StoreTestSupport.profile(samples, timeNanos: (t0Seconds + second) * 1_000_000_000).gzippedPprof()
    }

    static let samples = [
        S(stack: ["main", "serve", "parse"], count: 7),
        S(stack: ["main", "serve", "render"], count: 3, spanID: span, traceID: trace),
    ]

    static let range = "from=\(t0Seconds - 60)&until=\(t0Seconds + 3600)"

    @Test("native ingest is idempotent and queries answer JSON")
    func nativeIngestAndQueries() async throws {
        try await H.withStore { client, _ in
            let labels = H.query(#"{host.name="h1",service.version="1.0"}"#)
            for _ in 0..<2 {
                let r = try await H.post(client, "/api/v1/profiles?service=checkout&window_id=a1&labels=\(labels)", Self.pprof(Self.samples))
                #expect(r.status == .ok)
            }
            let second = try H.json(try await H.post(client, "/api/v1/profiles?service=checkout&window_id=a1&labels=\(labels)", Self.pprof(Self.samples)))
            #expect(second["duplicate"] as? Bool == true)
            _ = try await H.post(client, "/api/v1/profiles?service=checkout&window_id=a2&labels=\(H.query(#"{host.name="h2"}"#))", Self.pprof(Self.samples, second: 10))

            let services = try H.json(try await H.get(client, "/api/v1/services"))
            let list = services["services"] as? [[String: Any]]
            #expect(list?.first?["name"] as? String == "checkout")
            #expect(list?.first?["windows"] as? Int == 2)

            let names = try H.json(try await H.get(client, "/api/v1/labels?service=checkout"))
            #expect(names["names"] as? [String] == ["host.name", "service.version"])
            let values = try H.json(try await H.get(client, "/api/v1/labels/host.name/values?service=checkout"))
            #expect(values["values"] as? [String] == ["h1", "h2"])

            let flame = try H.json(try await H.get(client, "/api/v1/flamegraph?service=checkout&\(Self.range)"))
            #expect(flame["total"] as? Int == 20)
            let nodes = flame["nodes"] as? [String: [Any]]
            #expect(nodes?["name"]?.count == 5)
            let trimmed = try H.json(try await H.get(client, "/api/v1/flamegraph?service=checkout&\(Self.range)&max_nodes=3"))
            #expect((trimmed["nodes"] as? [String: [Any]])?["name"]?.count == 3)
            let h1 = try H.json(try await H.get(client, "/api/v1/flamegraph?service=checkout&\(Self.range)&labels=\(H.query(#"{host.name="h1"}"#))"))
            #expect(h1["total"] as? Int == 10)
            let bySpan = try H.json(try await H.get(client, "/api/v1/flamegraph?service=checkout&\(Self.range)&span_id=\(Self.span)"))
            #expect(bySpan["total"] as? Int == 6)

            let top = try H.json(try await H.get(client, "/api/v1/top?service=checkout&\(Self.range)&by=self"))
            let first = (top["functions"] as? [[String: Any]])?.first
            #expect(first?["name"] as? String == "parse")
            #expect(first?["self"] as? Int == 14)

            let totals = try H.json(try await H.get(client, "/api/v1/totals?service=checkout&from=\(Self.t0Seconds)&until=\(Self.t0Seconds + 60)&step=10s"))
            let points = totals["points"] as? [[Int]]
            #expect(points?.count == 6)
            #expect(points?[0][1] == 10)
            #expect(points?[1][1] == 10)

            let pprof = try await H.get(client, "/api/v1/pprof?service=checkout&\(Self.range)")
            #expect(pprof.status == .ok)
            let profile = try Profile(pprofFile: Array(pprof.body.readableBytesView))
            #expect(StoreTestSupport.selfTotals(profile) == ["parse": 14, "render": 6])

            let diff = try H.json(try await H.get(client, "/api/v1/diff?service=checkout&\(Self.range)&a_labels=\(H.query(#"{host.name="h1"}"#))&b_labels=\(H.query(#"{host.name="h2"}"#))&mode=absolute"))
            #expect(diff["total_a"] as? Int == 10)
            #expect(diff["total_b"] as? Int == 10)
            #expect(diff["scale_b"] as? Double == 1)

            let metrics = H.text(try await H.get(client, "/metrics"))
            #expect(metrics.contains(#"flare_store_ingested_profiles_total{result="stored"} 2"#))
            #expect(metrics.contains(#"flare_store_ingested_profiles_total{result="duplicate"} 2"#))
            let health = try H.json(try await H.get(client, "/health"))
            #expect(health["status"] as? String == "ok")
        }
    }

    @Test("Pyroscope-compatible ingest: raw pprof, multipart and folded")
    func pyroscope() async throws {
        try await H.withStore { client, _ in
            let name = H.query("shop.cpu{env=prod,region=eu}")
            let body = Self.pprof(Self.samples)
            let r1 = try await H.post(client, "/ingest?name=\(name)&from=\(Self.t0Seconds)&until=\(Self.t0Seconds + 10)&format=pprof", body)
            #expect(r1.status == .ok)
            // The same upload again is recognised by its content.
            let r2 = try H.json(try await H.post(client, "/ingest?name=\(name)&from=\(Self.t0Seconds)&until=\(Self.t0Seconds + 10)&format=pprof", body))
            #expect(r2["duplicate"] as? Bool == true)

            let boundary = "flareboundary"
            var multipart = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
            multipart += Self.pprof(Self.samples, second: 10)
            multipart += Array("\r\n--\(boundary)--\r\n".utf8)
            var headers = HTTPFields()
            headers[.contentType] = "multipart/form-data; boundary=\(boundary)"
            let r3 = try await H.post(client, "/ingest?name=\(name)&from=\(Self.t0Seconds + 10)&until=\(Self.t0Seconds + 20)&format=pprof", multipart, headers: headers)
            #expect(r3.status == .ok)

            let folded = Array("main;serve;parse 5\nmain;gc 1\n".utf8)
            let r4 = try await H.post(client, "/ingest?name=\(name)&from=\(Self.t0Seconds + 20)&until=\(Self.t0Seconds + 30)&sampleRate=100", folded)
            #expect(r4.status == .ok)

            let top = try H.json(try await H.get(client, "/api/v1/top?service=shop&\(Self.range)&labels=\(H.query(#"{env="prod"}"#))"))
            #expect(top["total"] as? Int == 26)
        }
    }

    @Test("OTLP/JSON spans come back from the trace query with CPU per span")
    func otlpJSON() async throws {
        try await H.withStore { client, _ in
            _ = try await H.post(client, "/api/v1/profiles?service=checkout&window_id=x", Self.pprof(Self.samples))
            let body = """
            {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
             "scopeSpans":[{"scope":{"name":"t"},"spans":[
              {"traceId":"\(Self.trace)","spanId":"3333333333333333","name":"GET /","kind":2,
               "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000",
               "attributes":[{"key":"http.method","value":{"stringValue":"GET"}},{"key":"n","value":{"intValue":"3"}}]},
              {"traceId":"\(Self.trace.uppercased())","spanId":"\(Self.span)","parentSpanId":"3333333333333333","name":"render <b>",
               "startTimeUnixNano":1700000000100000000,"endTimeUnixNano":"1700000000200000000","status":{"code":2,"message":"boom"}}]}]}]}
            """
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            let r = try await H.post(client, "/v1/traces", Array(body.utf8), headers: headers)
            #expect(r.status == .ok)
            let traceResponse = try await H.get(client, "/api/v1/traces/\(Self.trace)")
            // Names are escaped for HTML contexts too.
            #expect(H.text(traceResponse).contains(#"render \u003cb\u003e"#))
            let trace = try H.json(traceResponse)
            let spans = trace["spans"] as? [[String: Any]] ?? []
            #expect(spans.count == 2)
            let root = spans.first { $0["span_id"] as? String == "3333333333333333" }
            let child = spans.first { $0["span_id"] as? String == Self.span }
            #expect(root?["start_ns"] as? Int == 1_700_000_000_000_000_000)
            #expect((root?["attributes"] as? [String: Any])?["n"] as? Int == 3)
            #expect(child?["parent_span_id"] as? String == "3333333333333333")
            #expect(child?["status_code"] as? Int == 2)
            #expect((child?["self"] as? [String: Any])?["samples"] as? Int == 3)
            #expect((root?["with_descendants"] as? [String: Any])?["samples"] as? Int == 3)

            let spending = try H.json(try await H.get(client, "/api/v1/functions/spans?service=checkout&function=render&\(Self.range)"))
            let top = (spending["spans"] as? [[String: Any]])?.first
            #expect(top?["span_id"] as? String == Self.span)
            #expect(top?["name"] as? String == "render <b>")
            #expect((spending["traces"] as? [[String: Any]])?.first?["trace_id"] as? String == Self.trace)
        }
    }

    @Test("bearer tokens guard ingest and queries separately")
    func tokens() async throws {
        try await H.withStore({ $0.ingestToken = "in-secret"; $0.queryToken = "q-secret" }) { client, _ in
            let body = Self.pprof(Self.samples)
            let denied = try await H.post(client, "/api/v1/profiles?service=s&window_id=1", body)
            #expect(denied.status == .unauthorized)
            #expect(try H.json(denied)["error"] as? String ?? "" == "this store needs a bearer token for ingest requests: send Authorization: Bearer TOKEN")
            var wrong = HTTPFields(); wrong[.authorization] = "Bearer q-secret"
            #expect(try await H.post(client, "/api/v1/profiles?service=s&window_id=1", body, headers: wrong).status == .unauthorized)
            var ingest = HTTPFields(); ingest[.authorization] = "Bearer in-secret"
            #expect(try await H.post(client, "/api/v1/profiles?service=s&window_id=1", body, headers: ingest).status == .ok)
            #expect(try await H.get(client, "/api/v1/services").status == .unauthorized)
            #expect(try await H.get(client, "/api/v1/services", headers: ingest).status == .unauthorized)
            var query = HTTPFields(); query[.authorization] = "Bearer q-secret"
            #expect(try await H.get(client, "/api/v1/services", headers: query).status == .ok)
            #expect(try await H.get(client, "/health").status == .ok)
        }
    }
}
