/// The protobuf wire format, just as much as pprof needs: varints, 64-bit
/// fixed values (skipped), and length-delimited fields (sub-messages, strings,
/// packed repeated varints).
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    /// Omits zero, as proto3 does for scalar fields.
    mutating func uint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, 0); varint(value)
    }

    mutating func int(_ field: Int, _ value: Int64) { uint(field, UInt64(bitPattern: value)) }

    mutating func bool(_ field: Int, _ value: Bool) { if value { tag(field, 0); varint(1) } }

    mutating func bytesField(_ field: Int, _ value: some Collection<UInt8>) {
        tag(field, 2); varint(UInt64(value.count)); bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { bytesField(field, Array(value.utf8)) }

    mutating func packed(_ field: Int, _ values: some Collection<UInt64>) {
        guard !values.isEmpty else { return }
        var inner = ProtobufWriter()
        for value in values { inner.varint(value) }
        bytesField(field, inner.bytes)
    }

    mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        build(&inner)
        bytesField(field, inner.bytes)
    }
}

/// Why a pprof body could not be read.
public struct ProfileDecodingError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reads protobuf fields from a byte slice, checking every length against the
/// bytes left: the input may be hostile.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case bytes(ArraySlice<UInt8>)
        case skipped
    }

    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    var isAtEnd: Bool { position >= bytes.endIndex }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex else { throw ProfileDecodingError("truncated varint") }
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw ProfileDecodingError("varint longer than 10 bytes") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// The next field number and its value, or nil at the end.
    mutating func next() throws -> (field: Int, value: Value)? {
        guard !isAtEnd else { return nil }
        let key = try varint()
        let field = Int(truncatingIfNeeded: key >> 3)
        guard field > 0 else { throw ProfileDecodingError("field number 0") }
        switch key & 7 {
        case 0:
            return (field, .varint(try varint()))
        case 1:
            try skip(8)
            return (field, .skipped)
        case 2:
            let length = try varint()
            guard length <= UInt64(bytes.endIndex - position) else {
                throw ProfileDecodingError("length-delimited field \(field) runs past the end")
            }
            let start = position
            position += Int(length)
            return (field, .bytes(bytes[start..<position]))
        case 5:
            try skip(4)
            return (field, .skipped)
        default:
            throw ProfileDecodingError("unsupported wire type \(key & 7) in field \(field)")
        }
    }

    private mutating func skip(_ count: Int) throws {
        guard bytes.endIndex - position >= count else { throw ProfileDecodingError("truncated fixed-width field") }
        position += count
    }
}

extension ProtobufReader.Value {
    func uint() throws -> UInt64 {
        guard case .varint(let v) = self else { throw ProfileDecodingError("expected a varint") }
        return v
    }

    func int() throws -> Int64 { Int64(bitPattern: try uint()) }

    func slice() throws -> ArraySlice<UInt8> {
        guard case .bytes(let b) = self else { throw ProfileDecodingError("expected a length-delimited field") }
        return b
    }

    /// A repeated varint field, packed or not.
    func appendVarints(to array: inout [UInt64]) throws {
        switch self {
        case .varint(let v): array.append(v)
        case .bytes(let b):
            var reader = ProtobufReader(b)
            while !reader.isAtEnd { array.append(try reader.varint()) }
        case .skipped: throw ProfileDecodingError("expected varints")
        }
    }
}
