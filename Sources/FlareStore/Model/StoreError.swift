import FlareFlameGraph
import Hummingbird

/// An error a client can meet: an HTTP status and one clear sentence saying
/// what was wrong and, where it helps, what to do. Rendered as
/// `{"error": "…", "status": 400}`.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public let status: HTTPResponse.Status
    public let message: String

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public static func badRequest(_ message: String) -> StoreError { StoreError(.badRequest, message) }
    public static func notFound(_ message: String) -> StoreError { StoreError(.notFound, message) }

    public var description: String { "\(status.code) \(message)" }
}

extension StoreError: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.error(status: status, message: message)
    }
}
