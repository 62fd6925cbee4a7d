/// Writes the protobuf wire format the way pprof files are written: scalar
/// fields equal to zero are omitted, as proto3 does, and repeated numbers are
/// packed. (Reading goes through `ProtobufFieldReader`.)
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

extension ProtobufFieldReader.Value {
    func int() throws(ProtobufWireError) -> Int64 { Int64(bitPattern: try uint()) }

    /// A repeated varint field, packed or not.
    func appendVarints(to array: inout [UInt64]) throws(ProtobufWireError) {
        switch self {
        case .varint(let v): array.append(v)
        case .bytes(let b):
            var reader = ProtobufFieldReader(b)
            while !reader.isAtEnd { array.append(try reader.varint()) }
        case .fixed64, .fixed32: throw ProtobufWireError("expected varints")
        }
    }
}
