import Glibc

/// Reads a `perf.data` file written by `perf record`: the header, the first
/// event's attributes (which fix the record layout) and the data section's
/// records. Lets Flare unwind and symbolize what perf recorded, so both tools
/// can be compared on the very same samples.
public final class PerfDataFile {
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    public let parser: PerfRecordParser
    public let sampleFrequency: UInt64
    /// The file, mapped read-only: recordings run to hundreds of megabytes,
    /// mostly stack copies that are read once.
    private let bytes: UnsafeRawBufferPointer
    private let dataRange: Range<Int>

    public init(path: String) throws(Error) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Error(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Error(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        let size = Int(info.st_size)
        guard size >= 104, let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw Error(description: "\(path) is not a perf.data file (or was written in pipe mode, which is not supported)")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
        let name = path
        let bytes = self.bytes
        func u64(_ offset: Int) -> UInt64? {
            offset >= 0 && offset + 8 <= bytes.count ? bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) : nil
        }
        func u32(_ offset: Int) -> UInt32? {
            offset >= 0 && offset + 4 <= bytes.count ? bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self) : nil
        }
        guard Array(bytes[0..<8]) == Array("PERFILE2".utf8) else {
            munmap(base, size)
            throw Error(description: "\(name) is not a perf.data file (or was written in pipe mode, which is not supported)")
        }
        guard let attrSize = u64(16), let attrsOffset = u64(24), let attrsSize = u64(32),
              let dataOffset = u64(40), let dataSize = u64(48), attrsSize >= attrSize, attrSize > 16 + 96,
              attrsOffset <= UInt64(bytes.count), dataOffset <= UInt64(bytes.count), dataSize <= UInt64(bytes.count) - dataOffset else {
            munmap(base, size)
            throw Error(description: "\(name) has a damaged header")
        }
        // perf_event_attr: sample_type at 24, flags at 40 (sample_id_all is bit 18),
        // sample_regs_user at 80; sample_freq at 16 when the freq flag (bit 10) is set.
        let attr = Int(attrsOffset)
        guard let sampleType = u64(attr + 24), let flags = u64(attr + 40), let registers = u64(attr + 80),
              let period = u64(attr + 16), u32(attr) != nil else {
            munmap(base, size)
            throw Error(description: "\(name) has a damaged event description")
        }
        parser = PerfRecordParser(sampleType: sampleType, userRegisterMask: registers, sampleIDAll: flags & (1 << 18) != 0)
        sampleFrequency = flags & (1 << 10) != 0 ? period : 0
        dataRange = Int(dataOffset)..<Int(dataOffset + dataSize)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }

    /// The records of the data section in time order (perf writes each CPU's
    /// buffer in turn), decoded one at a time so that only one stack copy is
    /// alive at once. Records perf adds for itself (types 64 and up) are skipped.
    public func forEachRecordInTimeOrder(_ body: (PerfRecord) -> Void) {
        var index: [(time: UInt64, offset: Int, size: Int)] = []
        var offset = dataRange.lowerBound
        while offset + 8 <= dataRange.upperBound {
            let type = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            let size = Int(bytes.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self))
            guard size >= 8, offset + size <= dataRange.upperBound else { break }
            if type < 64 {
                index.append((parser.time(of: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + size)])), offset, size))
            }
            offset += size
        }
        index.sort { ($0.time, $0.offset) < ($1.time, $1.offset) }
        for entry in index {
            if let record = parser.parse(UnsafeRawBufferPointer(rebasing: bytes[entry.offset..<(entry.offset + entry.size)])) {
                body(record)
            }
        }
    }
}
