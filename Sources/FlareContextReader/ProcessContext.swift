/// The facts of the OTEL_CTX mapping (OTEP 4719; docs/context-abi.md, section 2).
public enum ProcessContextLayout {
    public static let mappingName = "OTEL_CTX"
    public static let signature: [UInt8] = Array("OTEL_CTX".utf8)
    public static let version: UInt32 = 2
    public static let headerSize = 32
    /// The payload cap the OpenTelemetry eBPF profiler applies too.
    public static let maxPayloadSize: UInt32 = 65536
    /// Deepest AnyValue nesting decoded; deeper values are skipped.
    static let maxDepth = 8
}

/// A validated 32-byte OTEL_CTX header.
public struct ProcessContextHeader: Equatable, Sendable {
    public enum Failure: Error, Equatable, Sendable {
        case truncated, badSignature, unsupportedVersion(UInt32), badPayloadSize(UInt32), beingUpdated
    }

    public var payloadSize: Int
    public var publishedAt: UInt64
    public var payloadAddress: UInt64

    public init(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        let r = ByteReader(bytes: bytes)
        guard bytes.count >= ProcessContextLayout.headerSize, let version = r.u32(8), let size = r.u32(12),
              let published = r.u64(16), let payload = r.u64(24)
        else { throw .truncated }
        guard bytes.prefix(8).elementsEqual(ProcessContextLayout.signature) else { throw .badSignature }
        guard version == ProcessContextLayout.version else { throw .unsupportedVersion(version) }
        guard size > 0, size <= ProcessContextLayout.maxPayloadSize else { throw .badPayloadSize(size) }
        guard published != 0 else { throw .beingUpdated }
        payloadSize = Int(size)
        publishedAt = published
        payloadAddress = payload
    }
}

/// The decoded `ProcessContext` protobuf: the process's resource attributes.
public struct ProcessContext: Equatable, Sendable {
    public struct DecodeError: Error, Equatable, Sendable {
        public var reason: String
    }

    /// Resource attributes with scalar values, rendered as strings.
    public var resource: [String: String]
    /// `ProcessContext.attributes`: extras outside the resource.
    public var attributes: [String: String]

    public var serviceName: String? { resource["service.name"] }
    public var serviceVersion: String? { resource["service.version"] }

    public init(resource: [String: String] = [:], attributes: [String: String] = [:]) {
        self.resource = resource
        self.attributes = attributes
    }

    /// Decodes `ProcessContext{resource = 1: Resource{attributes = 1}, attributes = 2}`,
    /// skipping unknown fields and wire types 0, 1 and 5, checking every length.
    public init(payload: UnsafeRawBufferPointer) throws(DecodeError) {
        var resource: [String: String] = [:]
        var attributes: [String: String] = [:]
        var message = ProtobufReader(payload)
        while let field = try message.next() {
            switch (field.number, field.value) {
            case (1, .bytes(let body)):
                var inner = ProtobufReader(body)
                while let attribute = try inner.next() {
                    if attribute.number == 1, case .bytes(let kv) = attribute.value, let (k, v) = try Self.keyValue(kv) {
                        resource[k] = v
                    }
                }
            case (2, .bytes(let kv)):
                if let (k, v) = try Self.keyValue(kv) { attributes[k] = v }
            default:
                break
            }
        }
        self.resource = resource
        self.attributes = attributes
    }

    /// Convenience for tests and fuzzing.
    public init(payload: [UInt8]) throws(DecodeError) {
        var result: Result<ProcessContext, DecodeError>!
        payload.withUnsafeBytes { bytes in
            do throws(DecodeError) { result = .success(try ProcessContext(payload: bytes)) } catch { result = .failure(error) }
        }
        self = try result.get()
    }

    static func keyValue(_ bytes: UnsafeRawBufferPointer) throws(DecodeError) -> (String, String)? {
        var key: String?
        var value: String?
        var reader = ProtobufReader(bytes)
        while let field = try reader.next() {
            switch (field.number, field.value) {
            case (1, .bytes(let k)): key = String(decoding: k, as: UTF8.self)
            case (2, .bytes(let v)): value = try anyValue(v, depth: 0)
            default: break
            }
        }
        guard let key else { return nil }
        return (key, value ?? "")
    }

    /// Scalars as text; arrays and key-value lists are summarized, not expanded.
    static func anyValue(_ bytes: UnsafeRawBufferPointer, depth: Int) throws(DecodeError) -> String? {
        guard depth <= ProcessContextLayout.maxDepth else { throw DecodeError(reason: "AnyValue nested too deeply") }
        var value: String?
        var reader = ProtobufReader(bytes)
        while let field = try reader.next() {
            switch (field.number, field.value) {
            case (1, .bytes(let s)): value = String(decoding: s, as: UTF8.self)
            case (2, .varint(let b)): value = b != 0 ? "true" : "false"
            case (3, .varint(let i)): value = String(Int64(bitPattern: i))
            case (4, .fixed64(let d)): value = String(Double(bitPattern: d))
            case (5, .bytes), (6, .bytes): value = "[…]"
            case (7, .bytes(let b)): value = b.map { String($0, radix: 16) }.joined()
            default: break
            }
        }
        return value
    }
}

/// A bounds-checked protobuf wire reader over borrowed bytes.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes(UnsafeRawBufferPointer)
    }

    struct Field {
        var number: UInt64
        var value: Value
    }

    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func varint() throws(ProcessContext.DecodeError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count, shift <= 63 else { throw .init(reason: "truncated or overlong varint") }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
    }

    mutating func next() throws(ProcessContext.DecodeError) -> Field? {
        guard position < bytes.count else { return nil }
        let key = try varint()
        let number = key >> 3
        guard number != 0 else { throw .init(reason: "field number 0") }
        let r = ByteReader(bytes: bytes)
        switch key & 7 {
        case 0:
            return Field(number: number, value: .varint(try varint()))
        case 1:
            guard let v = r.u64(position) else { throw .init(reason: "truncated fixed64") }
            position += 8
            return Field(number: number, value: .fixed64(v))
        case 2:
            let length = try varint()
            guard length <= UInt64(bytes.count - position), let body = r.slice(position, Int(length)) else {
                throw .init(reason: "length past end of message")
            }
            position += Int(length)
            return Field(number: number, value: .bytes(body))
        case 5:
            guard let v = r.u32(position) else { throw .init(reason: "truncated fixed32") }
            position += 4
            return Field(number: number, value: .fixed32(v))
        default:
            throw .init(reason: "unsupported wire type \(key & 7)")
        }
    }
}
