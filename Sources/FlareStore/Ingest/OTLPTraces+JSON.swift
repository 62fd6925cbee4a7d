import FlareFlameGraph
import Foundation

/// OTLP/JSON: the protobuf messages in proto3 JSON mapping with OTLP's
/// exceptions: trace and span ids are hex strings (not base64), enums are
/// integers, 64-bit integers may be strings or numbers, keys are lowerCamelCase.
extension OTLPTraces {
    public static func decodeJSON(_ bytes: [UInt8]) throws(StoreError) -> [SpanRecord] {
        let request: Request
        do {
            request = try JSONDecoder().decode(Request.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw .badRequest("malformed OTLP JSON body: \(describe(error))")
        } catch {
            throw .badRequest("malformed OTLP JSON body: \(error)")
        }
        var spans: [SpanRecord] = []
        for resourceSpans in request.resourceSpans ?? [] {
            var service = ""
            for attribute in resourceSpans.resource?.attributes ?? [] where attribute.key == "service.name" {
                if case .string(let s) = attribute.value?.json ?? .null { service = s }
            }
            for scope in resourceSpans.scopeSpans ?? [] {
                for span in scope.spans ?? [] {
                    guard spans.count < maxSpansPerRequest else {
                        throw .badRequest("too many spans in one request: at most \(maxSpansPerRequest); export smaller batches")
                    }
                    let parent = span.parentSpanId ?? ""
                    spans.append(try makeSpan(
                        traceID: span.traceId ?? "", rawTrace: span.traceId ?? "",
                        spanID: span.spanId ?? "", rawSpan: span.spanId ?? "",
                        parentID: parent.isEmpty ? "" : (parent.utf8.count == 16 && parent.allSatisfy(\.isHexDigit) ? parent : nil),
                        name: span.name ?? "", service: service, kind: span.kind?.value ?? 0,
                        start: span.startTimeUnixNano?.value ?? 0, end: span.endTimeUnixNano?.value ?? 0,
                        statusCode: span.status?.code?.value ?? 0, statusMessage: span.status?.message ?? "",
                        attributes: (span.attributes ?? []).prefix(128).map { ($0.key ?? "", $0.value?.json ?? .null) }))
                }
            }
        }
        return spans
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
        }
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
            let at = path(c)
            return (at.isEmpty ? "" : "at \(at): ") + c.debugDescription
        @unknown default: return "\(error)"
        }
    }

    struct Request: Decodable { var resourceSpans: [ResourceSpans]? }
    struct ResourceSpans: Decodable { var resource: Resource?; var scopeSpans: [ScopeSpans]? }
    struct Resource: Decodable { var attributes: [KeyValue]? }
    struct ScopeSpans: Decodable { var spans: [Span]? }
    struct Span: Decodable {
        var traceId: String?
        var spanId: String?
        var parentSpanId: String?
        var name: String?
        var kind: FlexibleInt?
        var startTimeUnixNano: FlexibleUInt?
        var endTimeUnixNano: FlexibleUInt?
        var attributes: [KeyValue]?
        var status: Status?
    }
    struct Status: Decodable { var message: String?; var code: FlexibleInt? }
    struct KeyValue: Decodable { var key: String?; var value: AnyValue? }
    struct ArrayValue: Decodable { var values: [AnyValue]? }
    struct KeyValueList: Decodable { var values: [KeyValue]? }

    final class AnyValue: Decodable {
        var stringValue: String?
        var boolValue: Bool?
        var intValue: FlexibleInt?
        var doubleValue: Double?
        var arrayValue: ArrayValue?
        var kvlistValue: KeyValueList?
        var bytesValue: String?

        var json: JSON {
            if let stringValue { return .string(stringValue) }
            if let boolValue { return .bool(boolValue) }
            if let intValue { return .int(intValue.value) }
            if let doubleValue { return .double(doubleValue) }
            if let arrayValue { return .array((arrayValue.values ?? []).prefix(1000).map(\.json)) }
            if let kvlistValue { return .object((kvlistValue.values ?? []).prefix(1000).map { ($0.key ?? "", $0.value?.json ?? .null) }) }
            if let bytesValue { return .string(bytesValue) }
            return .null
        }
    }

    /// A 64-bit integer as OTLP/JSON writes it: a decimal string, or a number.
    struct FlexibleInteger<Value: FixedWidthInteger & Decodable>: Decodable {
        var value: Value
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(Value.self) { value = v; return }
            let s = try c.decode(String.self)
            guard let v = Value(s) else {
                let kind = Value.isSigned ? "an integer" : "an unsigned integer"
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "\(JSONText.quoted(s)) is not \(kind)")
            }
            value = v
        }
    }
    /// int64 fields (kind, status code, int attributes).
    typealias FlexibleInt = FlexibleInteger<Int64>
    /// fixed64 timestamps.
    typealias FlexibleUInt = FlexibleInteger<UInt64>
}
