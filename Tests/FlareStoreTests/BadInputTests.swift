import FlareFlameGraph
import FlareProfile
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import FlareStore

/// Hostile and broken input: each gets a 4xx with a clear JSON message, the
/// server keeps answering, and what was stored before is unchanged.
@Suite("Bad input")
struct BadInputTests {
    typealias S = StoreTestSupport.Sample
    typealias H = HTTPTestSupport

    static let good = StoreTestSupport.profile([S(stack: ["main", "work"], count: 5)], timeNanos: 1_700_000_000_000_000_000)

    /// A valid pprof, then `mutate` applied to its decoded form, re-encoded.
    static func mutated(_ mutate: (inout Profile) -> Void) -> [UInt8] {
        var p = good
        mutate(&p)
        return Gzip.compress(p.pprofBytes())
    }

    static func gzipBomb() -> [UInt8] {
        // 64 MiB of zeros compress to about 64 KiB: past a 4 MiB decompression limit.
        Gzip.compress([UInt8](repeating: 0, count: 64 << 20), level: 9)
    }

    struct Case: Sendable, CustomStringConvertible {
        var description: String
        var path: String
        var body: [UInt8]
        var contentType: String? = nil
        var status: Int
        var mentions: String
    }

    static let profileURL = "/api/v1/profiles?service=checkout&window_id=bad"

    static var cases: [Case] {
        var corrupt = good.gzippedPprof()
        corrupt.replaceSubrange(12..<40, with: [UInt8](repeating: 0xff, count: 28))
        let truncated = Array(good.gzippedPprof().dropLast(12))
        var overflowProfile = good
        overflowProfile.samples = [Profile.Sample(locationIDs: overflowProfile.samples[0].locationIDs, values: [Int64.max, 1]),
                                   Profile.Sample(locationIDs: overflowProfile.samples[0].locationIDs, values: [Int64.max, 1])]
        return [
            Case(description: "corrupt gzip", path: profileURL, body: corrupt, status: 400, mentions: "not a valid pprof profile"),
            Case(description: "truncated gzip", path: profileURL, body: truncated, status: 400, mentions: "truncated"),
            Case(description: "gzip bomb", path: profileURL, body: gzipBomb(), status: 400, mentions: "expands past the limit"),
            Case(description: "empty body", path: profileURL, body: [], status: 400, mentions: "body is empty"),
            Case(description: "location index out of range", path: profileURL,
                 body: mutated { $0.samples[0].locationIDs.append(999) }, status: 400, mentions: "missing location 999"),
            Case(description: "function index out of range", path: profileURL,
                 body: mutated { $0.locations[0].lines[0].functionID = 77 }, status: 400, mentions: "missing function 77"),
            Case(description: "string index out of range", path: profileURL,
                 body: mutated { $0.functions[0].name = 5000 }, status: 400, mentions: "refers to string 5000"),
            Case(description: "string_table[0] not empty", path: profileURL,
                 body: mutated { $0.stringTable[0] = "x" }, status: 400, mentions: "string_table[0]"),
            Case(description: "negative value", path: profileURL,
                 body: mutated { $0.samples[0].values = [-5, 10] }, status: 400, mentions: "negative value"),
            Case(description: "overflowing values", path: profileURL, body: Gzip.compress(overflowProfile.pprofBytes()), status: 400, mentions: "overflow"),
            Case(description: "non-CPU profile", path: profileURL,
                 body: mutated { p in p.stringTable += ["alloc_space", "bytes"]; p.sampleTypes = [.init(type: Int64(p.stringTable.count - 2), unit: Int64(p.stringTable.count - 1))]; p.samples[0].values = [1] },
                 status: 400, mentions: "unsupported profile type"),
            Case(description: "invalid span_id label", path: profileURL,
                 body: mutated { p in p.stringTable += ["span_id", "zz"]; p.samples[0].labels = [.init(key: Int64(p.stringTable.count - 2), str: Int64(p.stringTable.count - 1))] },
                 status: 400, mentions: "span_id"),
            Case(description: "invalid label name", path: profileURL + "&labels=" + H.query("{9bad=x}"), body: good.gzippedPprof(), status: 400, mentions: "invalid label name"),
            Case(description: "label name with a quote", path: profileURL + "&labels=" + H.query(#"{a"b=x}"#), body: good.gzippedPprof(), status: 400, mentions: "invalid label name"),
            Case(description: "missing window id", path: "/api/v1/profiles?service=checkout", body: good.gzippedPprof(), status: 400, mentions: "window_id"),
            Case(description: "missing service", path: "/api/v1/profiles?window_id=1", body: good.gzippedPprof(), status: 400, mentions: "service"),
            Case(description: "window over 24 h", path: profileURL + "&from=1700000000&until=1800000000", body: good.gzippedPprof(), status: 400, mentions: "at most 24 h"),
            Case(description: "Pyroscope name with a bad label", path: "/ingest?format=pprof&name=" + H.query("app{in valid=1}"), body: good.gzippedPprof(), status: 400, mentions: "label"),
            Case(description: "Pyroscope unknown format", path: "/ingest?format=jfr&name=app", body: good.gzippedPprof(), status: 400, mentions: "not supported"),
            Case(description: "malformed OTLP protobuf", path: "/v1/traces", body: [0x0a, 0xff, 0xff, 0x01], contentType: "application/x-protobuf", status: 400, mentions: "malformed OTLP"),
            Case(description: "malformed OTLP JSON", path: "/v1/traces", body: Array(#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz","spanId":"1"}]}]}]}"#.utf8),
                 contentType: "application/json", status: 400, mentions: "trace id"),
            Case(description: "OTLP JSON that is not JSON", path: "/v1/traces", body: Array("{not json".utf8), contentType: "application/json", status: 400, mentions: "malformed OTLP JSON"),
            Case(description: "OTLP with an unknown content type", path: "/v1/traces", body: [1, 2], contentType: "text/plain", status: 415, mentions: "Content-Type"),
        ]
    }

    @Test("each is a 4xx with a clear message, and stored data is unchanged", arguments: cases)
    func rejected(_ c: Case) async throws {
        try await H.withStore({ $0.maxDecompressedBytes = 4 << 20 }) { client, storage in
            #expect(try await H.post(client, "/api/v1/profiles?service=checkout&window_id=good", Self.good.gzippedPprof()).status == .ok)
            var headers = HTTPFields()
            if let type = c.contentType { headers[.contentType] = type }
            let response = try await H.post(client, c.path, c.body, headers: headers)
            #expect(Int(response.status.code) == c.status, "\(c.description): \(H.text(response))")
            if c.contentType == "application/x-protobuf" {
                #expect(response.headers[.init("X-Flare-Error")!]?.contains(c.mentions) == true, "\(c.description)")
            } else {
                let message = (try? H.json(response))?["error"] as? String ?? ""
                #expect(message.contains(c.mentions), "\(c.description): \(message)")
            }
            // The server still answers and the earlier window is intact.
            let top = try H.json(try await H.get(client, "/api/v1/top?service=checkout&from=1699999990&until=1700000100"))
            #expect(top["total"] as? Int == 5)
            #expect(try await storage.counts().windows == 1)
        }
    }

    @Test("a body over the size limit is refused with 413")
    func oversizedBody() async throws {
        try await H.withStore({ $0.maxBodyBytes = 64 << 10 }) { client, _ in
            let big = [UInt8](repeating: 7, count: 200 << 10)
            let response = try await H.post(client, "/api/v1/profiles?service=checkout&window_id=big", big)
            #expect(response.status == .contentTooLarge)
            #expect((try H.json(response)["error"] as? String)?.contains("larger than the limit") == true)
            #expect(try await H.get(client, "/health").status == .ok)
        }
    }

    @Test("queries for unknown services, inverted ranges and bad ids are 4xx", arguments: [
        ("/api/v1/flamegraph?service=nope", 404, "unknown service"),
        ("/api/v1/top?service=checkout&from=1700000100&until=1700000000", 400, "inverted"),
        ("/api/v1/flamegraph?service=checkout&from=garbage", 400, "invalid from"),
        ("/api/v1/flamegraph", 400, "service parameter is missing"),
        ("/api/v1/flamegraph?service=checkout&span_id=xyz", 400, "invalid span id"),
        ("/api/v1/traces/123", 400, "invalid trace id"),
        ("/api/v1/traces/0123456789abcdef0123456789abcdef", 404, "unknown trace"),
        ("/api/v1/flamegraph?service=checkout&max_nodes=0", 400, "max_nodes"),
        ("/api/v1/flamegraph?service=checkout&labels=" + HTTPTestSupport.query(#"{a=~"("}"#), 400, "regular expression"),
        ("/api/v1/labels?service=nope", 404, "unknown service"),
        ("/api/v1/functions/spans?service=checkout&function=nothing", 404, "unknown function"),
        ("/api/v1/nothing", 404, "no such endpoint"),
    ])
    func badQueries(path: String, status: Int, mentions: String) async throws {
        try await H.withStore { client, _ in
            _ = try await H.post(client, "/api/v1/profiles?service=checkout&window_id=good", Self.good.gzippedPprof())
            let response = try await H.get(client, path)
            #expect(Int(response.status.code) == status, "\(path): \(H.text(response))")
            let message = (try? H.json(response))?["error"] as? String ?? ""
            #expect(message.contains(mentions), "\(path): \(message)")
        }
    }
}
