import AsyncHTTPClient
import FlareFlameGraph
import FlareProfile
import Foundation
import NIOCore

/// A few GET requests to a `flare store`'s query API, blocking, with the
/// query bearer token. Errors are `InputError`s that say what to do.
struct StoreClient {
    let baseURL: String
    let token: String?
    var timeoutSeconds = 300.0

    init(baseURL: String, token: String?) throws {
        var url = baseURL
        while url.hasSuffix("/") { url.removeLast() }
        guard let parsed = URL(string: url), let scheme = parsed.scheme, scheme == "http" || scheme == "https", parsed.host != nil else {
            throw InputError(description: "invalid --store \(TerminalText.safe(baseURL)): use the store's address, like http://127.0.0.1:4100")
        }
        self.baseURL = url
        self.token = token
    }

    /// GET `path` with `query` parameters; the body of a 200 answer.
    func get(_ path: String, _ query: [(String, String)]) throws -> Data {
        var components = URLComponents(string: baseURL + path)!
        components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) }
        // '+' in a query value would read as a space.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        let request: HTTPClient.Request
        let response: HTTPClient.Response
        do {
            request = try HTTPClient.Request(url: components.url!.absoluteString, method: .GET,
                                             headers: token.map { ["Authorization": "Bearer " + $0] } ?? [:])
            response = try HTTPClient.shared.execute(request: request, deadline: .now() + .milliseconds(Int64(timeoutSeconds * 1000))).wait()
        } catch {
            throw InputError(description: "cannot reach the store at \(baseURL): \(error); is `flare store` running there? (--store)")
        }
        let body = Data(response.body.map { Array(buffer: $0) } ?? [])
        let status = Int(response.status.code)
        switch status {
        case 200: return body
        case 401:
            throw InputError(description: "the store at \(baseURL) wants a query token (HTTP 401): pass --token-file FILE or set FLARE_QUERY_TOKEN")
        default:
            let message = (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["error"] as? String
                ?? String(decoding: body.prefix(300), as: UTF8.self)
            throw InputError(description: "the store answered HTTP \(status) to GET \(path): \(TerminalText.safe(message, maxLength: 500))")
        }
    }

    func getJSON(_ path: String, _ query: [(String, String)]) throws -> [String: Any] {
        let body = try get(path, query)
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw InputError(description: "the store's answer to GET \(path) is not a JSON object: is \(baseURL) a flare store?")
        }
        return object
    }
}
