import FlareProfile

/// A window's merged stacks as one compact blob: the count, then per stack
/// (sorted by id) the id delta, samples and CPU nanoseconds as varints. Reading
/// one blob per window is what makes a merge over thousands of windows fast.
public enum WindowBlob {
    public static func encode(_ entries: [(stackID: Int64, value: StackValue)]) -> [UInt8] {
        let sorted = entries.sorted { $0.stackID < $1.stackID }
        var w = ProtobufFieldWriter()
        w.varint(UInt64(sorted.count))
        var previous: Int64 = 0
        for entry in sorted {
            w.varint(UInt64(entry.stackID - previous))
            w.varint(UInt64(entry.value.samples))
            w.varint(UInt64(entry.value.cpuNanos))
            previous = entry.stackID
        }
        return w.bytes
    }

    /// Adds a blob's values into `totals`. Corrupt blobs (never written by
    /// the store) are reported rather than trusted.
    public static func accumulate(_ blob: UnsafeRawBufferPointer, into totals: inout [Int64: StackValue]) throws(StoreError) {
        var position = 0
        @inline(__always) func varint() throws(StoreError) -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < blob.count, shift < 64 else { throw StoreError(.internalServerError, "a stored window blob is corrupt") }
                let byte = blob[position]
                position += 1
                result |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
            }
        }
        let count = try varint()
        var stackID: Int64 = 0
        var i: UInt64 = 0
        while i < count {
            stackID &+= Int64(bitPattern: try varint())
            let samples = Int64(bitPattern: try varint())
            let cpu = Int64(bitPattern: try varint())
            totals[stackID, default: .zero].add(StackValue(samples: samples, cpuNanos: cpu))
            i += 1
        }
    }

    /// The same, with an untyped throw: easier on closures such as `withUnsafeBytes`.
    public static func add(_ blob: UnsafeRawBufferPointer, into totals: inout [Int64: StackValue]) throws {
        try accumulate(blob, into: &totals)
    }

    public static func add(_ bytes: [UInt8], into totals: inout [Int64: StackValue]) throws {
        try bytes.withUnsafeBytes { raw in try add(raw, into: &totals) }
    }

    public static func decode(_ bytes: [UInt8]) throws(StoreError) -> [Int64: StackValue] {
        var totals: [Int64: StackValue] = [:]
        var failure: StoreError?
        bytes.withUnsafeBytes { raw in
            do throws(StoreError) { try accumulate(raw, into: &totals) } catch { failure = error }
        }
        if let failure { throw failure }
        return totals
    }
}
