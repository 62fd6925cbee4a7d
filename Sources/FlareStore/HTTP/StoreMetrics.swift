import Foundation
import Synchronization

/// Counters for `GET /metrics` in the Prometheus text format.
public final class StoreMetrics: Sendable {
    private struct State {
        var requests: [String: Int64] = [:]          // "route|code"
        var ingest: [String: Int64] = [:]            // result
        var ingestBytes: Int64 = 0
        var spans: Int64 = 0
        var durationSum: [String: Double] = [:]      // route
        var durationCount: [String: Int64] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    func request(route: String, code: Int, seconds: Double) {
        state.withLock {
            $0.requests["\(route)|\(code)", default: 0] += 1
            $0.durationSum[route, default: 0] += seconds
            $0.durationCount[route, default: 0] += 1
        }
    }

    func ingested(_ result: String, bytes: Int) {
        state.withLock {
            $0.ingest[result, default: 0] += 1
            $0.ingestBytes += Int64(bytes)
        }
    }

    func spansIngested(_ count: Int) { state.withLock { $0.spans += Int64(count) } }

    /// The exposition text, with storage gauges appended by the caller.
    func render(counts: StorageCounts?) -> String {
        let s = state.withLock { $0 }
        var out = ""
        out += "# HELP flare_store_http_requests_total HTTP requests by route and status code.\n# TYPE flare_store_http_requests_total counter\n"
        for (key, value) in s.requests.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|", maxSplits: 1)
            out += "flare_store_http_requests_total{route=\(Self.quote(String(parts[0]))),code=\"\(parts[1])\"} \(value)\n"
        }
        out += "# HELP flare_store_http_request_duration_seconds Time spent answering requests, by route.\n# TYPE flare_store_http_request_duration_seconds summary\n"
        for (route, sum) in s.durationSum.sorted(by: { $0.key < $1.key }) {
            out += "flare_store_http_request_duration_seconds_sum{route=\(Self.quote(route))} \(sum)\n"
            out += "flare_store_http_request_duration_seconds_count{route=\(Self.quote(route))} \(s.durationCount[route] ?? 0)\n"
        }
        out += "# HELP flare_store_ingested_profiles_total Profiles received, by result (stored, duplicate, rejected).\n# TYPE flare_store_ingested_profiles_total counter\n"
        for result in ["stored", "duplicate", "rejected"] {
            out += "flare_store_ingested_profiles_total{result=\"\(result)\"} \(s.ingest[result] ?? 0)\n"
        }
        out += "# HELP flare_store_ingested_bytes_total Compressed profile bytes received.\n# TYPE flare_store_ingested_bytes_total counter\n"
        out += "flare_store_ingested_bytes_total \(s.ingestBytes)\n"
        out += "# HELP flare_store_ingested_spans_total Spans received over OTLP.\n# TYPE flare_store_ingested_spans_total counter\n"
        out += "flare_store_ingested_spans_total \(s.spans)\n"
        if let c = counts {
            out += "# HELP flare_store_windows Profile windows stored.\n# TYPE flare_store_windows gauge\nflare_store_windows \(c.windows)\n"
            out += "# HELP flare_store_stacks Distinct stacks stored.\n# TYPE flare_store_stacks gauge\nflare_store_stacks \(c.stacks)\n"
            out += "# HELP flare_store_functions Distinct functions stored.\n# TYPE flare_store_functions gauge\nflare_store_functions \(c.functions)\n"
            out += "# HELP flare_store_spans Spans stored.\n# TYPE flare_store_spans gauge\nflare_store_spans \(c.spans)\n"
        }
        return out
    }

    private static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
