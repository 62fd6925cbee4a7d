import FlareFlameGraph
import Hummingbird
import NIOCore

/// Responses with a JSON body.
public enum JSONResponse {
    public static func make(_ json: JSON, status: HTTPResponse.Status = .ok) -> Response {
        make(text: json.text, status: status)
    }

    public static func make(text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    public static func error(status: HTTPResponse.Status, message: String) -> Response {
        make(.object([("error", .string(message)), ("status", .int(Int64(status.code)))]), status: status)
    }
}
