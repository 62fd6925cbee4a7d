import FlareFlameGraph
import FlareProfile
import Foundation

/// OTLP/HTTP trace export bodies (`ExportTraceServiceRequest`), protobuf and
/// JSON, decoded into `SpanRecord`s. Field numbers follow the published
/// opentelemetry-proto files (trace/v1/trace.proto, common/v1/common.proto,
/// resource/v1/resource.proto, collector/trace/v1/trace_service.proto).
public enum OTLPTraces {
    public static let maxSpansPerRequest = 100_000

    // MARK: Protobuf

    public static func decodeProtobuf(_ bytes: [UInt8]) throws(StoreError) -> [SpanRecord] {
        do {
            var spans: [SpanRecord] = []
            var request = ProtobufFieldReader(bytes[...])
            while let (field, value) = try request.next() {
                guard field == 1 else { continue }             // resource_spans
                try decodeResourceSpans(try value.slice(), into: &spans)
            }
            return spans
        } catch let error as ProtobufWireError {
            throw .badRequest("malformed OTLP protobuf body: \(error.description)")
        } catch let error as StoreError {
            throw error
        } catch {
            throw .badRequest("malformed OTLP protobuf body: \(error)")
        }
    }

    private static func decodeResourceSpans(_ bytes: ArraySlice<UInt8>, into spans: inout [SpanRecord]) throws {
        var service = ""
        var scopes: [ArraySlice<UInt8>] = []
        var r = ProtobufFieldReader(bytes)
        while let (field, value) = try r.next() {
            switch field {
            case 1:                                            // resource
                var resource = ProtobufFieldReader(try value.slice())
                while let (f, v) = try resource.next() {
                    guard f == 1 else { continue }                     // attributes
                    let (key, attribute) = try decodeKeyValue(try v.slice())
                    if key == "service.name", case .string(let s) = attribute { service = s }
                }
            case 2: scopes.append(try value.slice())        // scope_spans
            default: break
            }
        }
        for scope in scopes {
            var s = ProtobufFieldReader(scope)
            while let (field, value) = try s.next() {
                guard field == 2 else { continue }                     // spans
                spans.append(try decodeSpan(try value.slice(), service: service))
                guard spans.count <= maxSpansPerRequest else {
                    throw StoreError.badRequest("too many spans in one request: at most \(maxSpansPerRequest); export smaller batches")
                }
            }
        }
    }

    private static func decodeSpan(_ bytes: ArraySlice<UInt8>, service: String) throws -> SpanRecord {
        var traceID: ArraySlice<UInt8> = []
        var spanID: ArraySlice<UInt8> = []
        var parentID: ArraySlice<UInt8> = []
        var name = ""
        var kind: Int64 = 0
        var start: UInt64 = 0
        var end: UInt64 = 0
        var attributes: [(String, JSON)] = []
        var statusCode: Int64 = 0
        var statusMessage = ""
        var r = ProtobufFieldReader(bytes)
        while let (field, value) = try r.next() {
            switch field {
            case 1: traceID = try value.slice()
            case 2: spanID = try value.slice()
            case 4: parentID = try value.slice()
            case 5: name = try value.string()
            case 6: kind = Int64(truncatingIfNeeded: try value.uint())
            case 7: start = try value.uint()
            case 8: end = try value.uint()
            case 9:
                if attributes.count < 128 { attributes.append(try decodeKeyValue(try value.slice())) }
            case 15:
                var s = ProtobufFieldReader(try value.slice())
                while let (f, v) = try s.next() {
                    if f == 2 { statusMessage = try v.string() }
                    if f == 3 { statusCode = Int64(truncatingIfNeeded: try v.uint()) }
                }
            default: break
            }
        }
        return try makeSpan(traceID: traceID.count == 16 ? TraceIDs.hex(traceID) : nil, rawTrace: TraceIDs.hex(traceID.prefix(64)),
                            spanID: spanID.count == 8 ? TraceIDs.hex(spanID) : nil, rawSpan: TraceIDs.hex(spanID.prefix(64)),
                            parentID: parentID.isEmpty ? "" : (parentID.count == 8 ? TraceIDs.hex(parentID) : nil),
                            name: name, service: service, kind: kind, start: start, end: end,
                            statusCode: statusCode, statusMessage: statusMessage, attributes: attributes)
    }

    private static func decodeKeyValue(_ bytes: ArraySlice<UInt8>) throws -> (String, JSON) {
        var key = ""
        var value = JSON.null
        var r = ProtobufFieldReader(bytes)
        while let (field, v) = try r.next() {
            if field == 1 { key = try v.string() }
            if field == 2 { value = try decodeAnyValue(try v.slice(), depth: 0) }
        }
        return (key, value)
    }

    private static func decodeAnyValue(_ bytes: ArraySlice<UInt8>, depth: Int) throws -> JSON {
        guard depth < 8 else { throw StoreError.badRequest("malformed OTLP body: attribute values nest deeper than 8 levels") }
        var r = ProtobufFieldReader(bytes)
        var result = JSON.null
        while let (field, v) = try r.next() {
            switch field {
            case 1: result = .string(try v.string())
            case 2: result = .bool(try v.uint() != 0)
            case 3: result = .int(Int64(bitPattern: try v.uint()))
            case 4: result = .double(Double(bitPattern: try v.uint()))
            case 5, 6:
                var items: [JSON] = []
                var members: [(String, JSON)] = []
                var inner = ProtobufFieldReader(try v.slice())
                while let (f, item) = try inner.next() {
                    guard f == 1 else { continue }
                    if field == 5 { items.append(try decodeAnyValue(try item.slice(), depth: depth + 1)) }
                    else { members.append(try decodeKeyValue(try item.slice())) }
                }
                result = field == 5 ? .array(items) : .object(members)
            case 7: result = .string(Data(try v.slice()).base64EncodedString())
            default: break
            }
        }
        return result
    }

    // MARK: Shared checks

    static func makeSpan(traceID: String?, rawTrace: String, spanID: String?, rawSpan: String, parentID: String?, name: String,
                         service: String, kind: Int64, start: UInt64, end: UInt64, statusCode: Int64, statusMessage: String,
                         attributes: [(String, JSON)]) throws(StoreError) -> SpanRecord {
        guard let traceID, let trace = TraceIDs.normalizedHex(traceID, digits: 32) else {
            throw .badRequest("malformed OTLP span \(JSONText.quoted(name)): trace id \(JSONText.quoted(rawTrace)) is not 16 bytes, or is all zero")
        }
        guard let spanID, let span = TraceIDs.normalizedHex(spanID, digits: 16) else {
            throw .badRequest("malformed OTLP span \(JSONText.quoted(name)): span id \(JSONText.quoted(rawSpan)) is not 8 bytes, or is all zero")
        }
        guard let parentID else {
            throw .badRequest("malformed OTLP span \(JSONText.quoted(name)): parent span id is not 8 bytes")
        }
        guard start <= UInt64(Int64.max), end <= UInt64(Int64.max) else {
            throw .badRequest("malformed OTLP span \(JSONText.quoted(name)): a timestamp is out of range")
        }
        guard end >= start else {
            throw .badRequest("malformed OTLP span \(JSONText.quoted(name)): it ends (\(end)) before it starts (\(start))")
        }
        return SpanRecord(traceID: trace, spanID: span, parentSpanID: TraceIDs.normalizedHex(parentID, digits: 16) ?? "",
                          name: ProfileIngest.truncate(name, 1024), service: ProfileIngest.truncate(service.isEmpty ? "unknown_service" : service, 256),
                          kind: kind, startNanos: Int64(start), endNanos: Int64(end),
                          statusCode: statusCode, statusMessage: ProfileIngest.truncate(statusMessage, 1024), attributesJSON: JSON.object(attributes).text)
    }
}
