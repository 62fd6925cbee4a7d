import FlareProfile

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
        do throws(ProtobufWireError) {
            var message = ProtobufFieldReader(Array(payload)[...])
            while let (number, value) = try message.next() {
                switch (number, value) {
                case (1, .bytes(let body)):
                    var inner = ProtobufFieldReader(body)
                    while let attribute = try inner.next() {
                        if attribute.field == 1, case .bytes(let kv) = attribute.value, let (k, v) = try Self.keyValue(kv) {
                            resource[k] = v
                        }
                    }
                case (2, .bytes(let kv)):
                    if let (k, v) = try Self.keyValue(kv) { attributes[k] = v }
                default:
                    break
                }
            }
        } catch {
            throw DecodeError(reason: error.description)
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

    static func keyValue(_ bytes: ArraySlice<UInt8>) throws(ProtobufWireError) -> (String, String)? {
        var key: String?
        var value: String?
        var reader = ProtobufFieldReader(bytes)
        while let field = try reader.next() {
            switch (field.field, field.value) {
            case (1, .bytes(let k)): key = String(decoding: k, as: UTF8.self)
            case (2, .bytes(let v)): value = try anyValue(v, depth: 0)
            default: break
            }
        }
        guard let key else { return nil }
        return (key, value ?? "")
    }

    /// Scalars as text; arrays and key-value lists are summarized, not expanded.
    static func anyValue(_ bytes: ArraySlice<UInt8>, depth: Int) throws(ProtobufWireError) -> String? {
        guard depth <= ProcessContextLayout.maxDepth else { throw ProtobufWireError("AnyValue nested too deeply") }
        var value: String?
        var reader = ProtobufFieldReader(bytes)
        while let field = try reader.next() {
            switch (field.field, field.value) {
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
