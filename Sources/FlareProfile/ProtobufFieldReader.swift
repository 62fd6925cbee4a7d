/// A public protobuf field reader for other message types than pprof (OTLP
/// spans, the store's own blobs). Unlike the pprof reader it keeps fixed-width
/// values, which OTLP uses for timestamps. Every length is checked against the
/// bytes left: the input may be hostile.
public struct ProtobufFieldReader {
    public enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes(ArraySlice<UInt8>)
    }

    private let bytes: ArraySlice<UInt8>
    private var position: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    public var isAtEnd: Bool { position >= bytes.endIndex }

    public mutating func varint() throws(ProtobufWireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex else { throw ProtobufWireError("truncated varint") }
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw ProtobufWireError("varint longer than 10 bytes") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// The next field number and its value, or nil at the end of the message.
    public mutating func next() throws(ProtobufWireError) -> (field: Int, value: Value)? {
        guard !isAtEnd else { return nil }
        let key = try varint()
        guard key >> 3 <= UInt64(Int32.max), key >> 3 > 0 else { throw ProtobufWireError("invalid field number \(key >> 3)") }
        let field = Int(key >> 3)
        switch key & 7 {
        case 0:
            return (field, .varint(try varint()))
        case 1:
            guard bytes.endIndex - position >= 8 else { throw ProtobufWireError("truncated fixed64 field \(field)") }
            var value: UInt64 = 0
            for i in 0..<8 { value |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += 8
            return (field, .fixed64(value))
        case 2:
            let length = try varint()
            guard length <= UInt64(bytes.endIndex - position) else {
                throw ProtobufWireError("length-delimited field \(field) runs past the end")
            }
            let start = position
            position += Int(length)
            return (field, .bytes(bytes[start..<position]))
        case 5:
            guard bytes.endIndex - position >= 4 else { throw ProtobufWireError("truncated fixed32 field \(field)") }
            var value: UInt32 = 0
            for i in 0..<4 { value |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
            position += 4
            return (field, .fixed32(value))
        default:
            throw ProtobufWireError("unsupported wire type \(key & 7) in field \(field)")
        }
    }
}

/// Why protobuf bytes could not be read.
public struct ProtobufWireError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension ProtobufFieldReader.Value {
    public func uint() throws(ProtobufWireError) -> UInt64 {
        switch self {
        case .varint(let v), .fixed64(let v): return v
        case .fixed32(let v): return UInt64(v)
        case .bytes: throw ProtobufWireError("expected a number, found a length-delimited field")
        }
    }

    public func slice() throws(ProtobufWireError) -> ArraySlice<UInt8> {
        guard case .bytes(let b) = self else { throw ProtobufWireError("expected a length-delimited field, found a number") }
        return b
    }

    public func string() throws(ProtobufWireError) -> String {
        let b = try slice()
        guard let s = String(validating: b, as: UTF8.self) else { throw ProtobufWireError("a string field is not valid UTF-8") }
        return s
    }
}

/// Writes protobuf fields; public for the store's compact blobs and tests that build OTLP bodies.
public struct ProtobufFieldWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func tag(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }
    public mutating func uint(_ field: Int, _ value: UInt64) { tag(field, 0); varint(value) }
    public mutating func fixed64(_ field: Int, _ value: UInt64) {
        tag(field, 1)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }
    public mutating func bytesField(_ field: Int, _ value: some Collection<UInt8>) {
        tag(field, 2); varint(UInt64(value.count)); bytes.append(contentsOf: value)
    }
    public mutating func string(_ field: Int, _ value: String) { bytesField(field, Array(value.utf8)) }
    public mutating func message(_ field: Int, _ build: (inout ProtobufFieldWriter) -> Void) {
        var inner = ProtobufFieldWriter()
        build(&inner)
        bytesField(field, inner.bytes)
    }
}
