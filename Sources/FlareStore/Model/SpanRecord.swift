import FlareFlameGraph
/// One span from a trace, as OTLP delivers it.
public struct SpanRecord: Sendable, Equatable {
    public var traceID: String       // 32 lowercase hex digits
    public var spanID: String        // 16 lowercase hex digits
    public var parentSpanID: String  // "" for a root span
    public var name: String
    public var service: String
    public var kind: Int64
    public var startNanos: Int64
    public var endNanos: Int64
    public var statusCode: Int64
    public var statusMessage: String
    /// The span's attributes as a JSON object.
    public var attributesJSON: String

    public init(traceID: String, spanID: String, parentSpanID: String, name: String, service: String, kind: Int64,
                startNanos: Int64, endNanos: Int64, statusCode: Int64 = 0, statusMessage: String = "", attributesJSON: String = "{}") {
        self.traceID = traceID; self.spanID = spanID; self.parentSpanID = parentSpanID; self.name = name
        self.service = service; self.kind = kind; self.startNanos = startNanos; self.endNanos = endNanos
        self.statusCode = statusCode; self.statusMessage = statusMessage; self.attributesJSON = attributesJSON
    }
}

/// Trace and span ids as the store keeps them: lowercase hex.
public enum TraceIDs {
    public static func normalizedHex(_ text: String, digits: Int) -> String? {
        guard text.utf8.count == digits, text.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }) else { return nil }
        let lower = text.lowercased()
        return lower.utf8.allSatisfy({ $0 == 48 }) ? nil : lower
    }

    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// A validated span id from a query parameter.
    public static func spanID(_ text: String) throws(StoreError) -> String {
        guard let id = normalizedHex(text, digits: 16) else {
            throw .badRequest("invalid span id \(JSONText.quoted(text)): a span id is 16 hex digits, not all zero")
        }
        return id
    }

    public static func traceID(_ text: String) throws(StoreError) -> String {
        guard let id = normalizedHex(text, digits: 32) else {
            throw .badRequest("invalid trace id \(JSONText.quoted(text)): a trace id is 32 hex digits, not all zero")
        }
        return id
    }
}
