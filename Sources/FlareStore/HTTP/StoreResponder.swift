import FlareFlameGraph
import Foundation
import Hummingbird

/// Wraps the router with what every request needs: bearer-token checks,
/// JSON errors for everything (unknown routes, oversized bodies, internal
/// failures), and request metrics.
struct StoreResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == BasicRequestContext {
    typealias Context = BasicRequestContext
    let inner: Inner
    let configuration: StoreConfiguration
    let metrics: StoreMetrics

    enum Access { case open, ingest, query }

    static func access(method: HTTPRequest.Method, path: String) -> Access {
        // The viewer's own files hold no data: its API calls carry the query token.
        if path == "/health" || path == "/metrics" || path == "/" || path.hasPrefix("/ui/") { return .open }
        if method == .post && (path == "/ingest" || path == "/v1/traces" || path == "/api/v1/profiles" || path.hasPrefix("/api/v1/debuginfo/")) { return .ingest }
        return .query
    }

    func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        let path = request.uri.path
        var response: Response
        do {
            try authorize(request, access: Self.access(method: request.method, path: path))
            response = try await inner.respond(to: request, context: context)
            if response.status == .notFound && response.headers[.contentType] == nil {
                response = JSONResponse.error(status: .notFound, message: "no such endpoint: \(request.method) \(path); see docs/api.md")
            }
        } catch let error as StoreError {
            response = JSONResponse.error(status: error.status, message: error.message)
        } catch let error as HTTPError {
            let message: String
            switch error.status {
            case .contentTooLarge: message = "the request body is larger than the limit of \(configuration.maxBodyBytes) bytes; send smaller profiles or raise --max-body"
            default: message = error.body ?? error.status.reasonPhrase
            }
            response = JSONResponse.error(status: error.status, message: message)
        } catch {
            context.logger.error("request failed", metadata: ["path": .string(path), "error": .string("\(error)")])
            response = JSONResponse.error(status: .internalServerError, message: "internal error: \(error); the store logged it")
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        metrics.request(route: Self.routeLabel(path), code: Int(response.status.code), seconds: seconds)
        return response
    }

    /// A bounded route label: ids in paths are not label values.
    static func routeLabel(_ path: String) -> String {
        if path.hasPrefix("/api/v1/traces/") { return "/api/v1/traces/:id" }
        if path.hasPrefix("/api/v1/labels/") { return "/api/v1/labels/:name/values" }
        if path.hasPrefix("/ui/") { return "/ui/:file" }
        if path.hasPrefix("/api/v1/debuginfo/") { return "/api/v1/debuginfo/:build_id" }
        let known = ["/health", "/metrics", "/ingest", "/v1/traces", "/api/v1/profiles", "/api/v1/services", "/api/v1/labels",
                     "/api/v1/totals", "/api/v1/flamegraph", "/api/v1/top", "/api/v1/pprof", "/api/v1/diff", "/api/v1/versions",
                     "/api/v1/functions/spans", "/", "/api/v1/traces", "/api/v1/export"]
        return known.contains(path) ? path : "other"
    }

    private func authorize(_ request: Request, access: Access) throws {
        let token: String?
        switch access {
        case .open: return
        case .ingest: token = configuration.ingestToken
        case .query: token = configuration.queryToken
        }
        guard let token, !token.isEmpty else { return }
        let header = request.headers[.authorization] ?? ""
        let expected = "Bearer " + token
        guard Self.constantTimeEqual(Array(header.utf8), Array(expected.utf8)) else {
            let what = access == .ingest ? "ingest" : "query"
            throw StoreError(.unauthorized, header.isEmpty
                ? "this store needs a bearer token for \(what) requests: send Authorization: Bearer TOKEN"
                : "the bearer token is not valid for \(what) requests")
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}
