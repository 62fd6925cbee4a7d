import Glibc

/// Reads a `perf.data` file written by `perf record`: the header, the first
/// event's attributes (which fix the record layout) and the data section's
/// records. Lets Flare unwind and symbolize what perf recorded, so both tools
/// can be compared on the very same samples.
public struct PerfDataFile {
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    public let parser: PerfRecordParser
    public let sampleFrequency: UInt64
    private let bytes: [UInt8]
    private let dataRange: Range<Int>

    public init(path: String) throws(Error) {
        guard let file = fopen(path, "re") else {
            throw Error(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            contents.append(contentsOf: chunk[..<n])
        }
        try self.init(bytes: contents, name: path)
    }

    public init(bytes: [UInt8], name: String = "perf.data") throws(Error) {
        func u64(_ offset: Int) -> UInt64? {
            offset >= 0 && offset + 8 <= bytes.count ? bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) } : nil
        }
        func u32(_ offset: Int) -> UInt32? {
            offset >= 0 && offset + 4 <= bytes.count ? bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) } : nil
        }
        guard bytes.count >= 104, Array(bytes[0..<8]) == Array("PERFILE2".utf8) else {
            throw Error(description: "\(name) is not a perf.data file (or was written in pipe mode, which is not supported)")
        }
        guard let attrSize = u64(16), let attrsOffset = u64(24), let attrsSize = u64(32),
              let dataOffset = u64(40), let dataSize = u64(48), attrsSize >= attrSize, attrSize > 16 + 96,
              dataOffset <= UInt64(bytes.count), dataSize <= UInt64(bytes.count) - dataOffset else {
            throw Error(description: "\(name) has a damaged header")
        }
        // perf_event_attr: sample_type at 24, flags at 40 (sample_id_all is bit 18),
        // sample_regs_user at 80; sample_freq at 16 when the freq flag (bit 10) is set.
        let attr = Int(attrsOffset)
        guard let sampleType = u64(attr + 24), let flags = u64(attr + 40), let registers = u64(attr + 80),
              let period = u64(attr + 16), u32(attr) != nil else {
            throw Error(description: "\(name) has a damaged event description")
        }
        parser = PerfRecordParser(sampleType: sampleType, userRegisterMask: registers, sampleIDAll: flags & (1 << 18) != 0)
        sampleFrequency = flags & (1 << 10) != 0 ? period : 0
        self.bytes = bytes
        dataRange = Int(dataOffset)..<Int(dataOffset + dataSize)
    }

    /// The records of the data section, in file order. Records perf adds for
    /// itself (types 64 and up) are skipped.
    public func forEachRecord(_ body: (PerfRecord) -> Void) {
        bytes.withUnsafeBytes { raw in
            var offset = dataRange.lowerBound
            while offset + 8 <= dataRange.upperBound {
                let type = raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                let size = Int(raw.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self))
                guard size >= 8, offset + size <= dataRange.upperBound else { return }
                if type < 64, let record = parser.parse(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + size)])) {
                    body(record)
                }
                offset += size
            }
        }
    }
}
