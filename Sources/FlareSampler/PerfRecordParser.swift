import CPerfEvent

/// Decodes the records Flare asks for. The sample layout follows from the
/// `sample_type` bits a `SamplingSession` sets; each field's order is fixed by
/// the kernel ABI (include/uapi/linux/perf_event.h).
/// Decodes perf records for one event's `sample_type`: the layout of a sample
/// and of the `sample_id` trailer on other records follows from its bits, in
/// the order fixed by the kernel ABI (include/uapi/linux/perf_event.h). Flare's
/// own sessions and perf.data files from `perf record` both go through here.
public struct PerfRecordParser: Sendable {
    static let baseSampleType = UInt64(PERF_SAMPLE_IP.rawValue | PERF_SAMPLE_TID.rawValue | PERF_SAMPLE_TIME.rawValue
        | PERF_SAMPLE_CPU.rawValue | PERF_SAMPLE_PERIOD.rawValue | PERF_SAMPLE_CALLCHAIN.rawValue)
    static let stackSampleType = UInt64(PERF_SAMPLE_REGS_USER.rawValue | PERF_SAMPLE_STACK_USER.rawValue)

    let sampleType: UInt64
    /// Registers per REGS_USER block (bits in sample_regs_user).
    let userRegisterCount: Int
    /// Bytes of the `sample_id` trailer that sample_id_all appends to non-sample records.
    let sampleIDSize: Int
    /// Offset of the time within that trailer, if it has one.
    let trailerTimeOffset: Int?

    /// - Parameters:
    ///   - sampleType: the event's `sample_type` bits.
    ///   - userRegisterMask: its `sample_regs_user`.
    ///   - sampleIDAll: whether non-sample records carry the `sample_id` trailer.
    public init(sampleType: UInt64, userRegisterMask: UInt64, sampleIDAll: Bool = true) {
        self.sampleType = sampleType
        self.userRegisterCount = userRegisterMask.nonzeroBitCount
        func has(_ bit: perf_event_sample_format) -> Bool { sampleType & UInt64(bit.rawValue) != 0 }
        var size = 0
        var timeOffset: Int?
        if sampleIDAll {
            if has(PERF_SAMPLE_TID) { size += 8 }
            if has(PERF_SAMPLE_TIME) { timeOffset = size; size += 8 }
            for bit in [PERF_SAMPLE_ID, PERF_SAMPLE_STREAM_ID, PERF_SAMPLE_CPU, PERF_SAMPLE_IDENTIFIER] where has(bit) { size += 8 }
        }
        sampleIDSize = size
        trailerTimeOffset = timeOffset
    }

    /// The parser for what a `SamplingSession` asks the kernel for.
    init(capturesStacks: Bool) {
        self.init(sampleType: Self.baseSampleType | (capturesStacks ? Self.stackSampleType : 0),
                  userRegisterMask: capturesStacks ? UserRegisters.mask : 0)
    }

    /// A record's timestamp without decoding the rest of it (0 if it has none).
    public func time(of bytes: UnsafeRawBufferPointer) -> UInt64 {
        guard bytes.count >= 8 else { return 0 }
        let type = bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
        if type == PERF_RECORD_SAMPLE.rawValue {
            guard sampleType & UInt64(PERF_SAMPLE_TIME.rawValue) != 0 else { return 0 }
            var offset = 8
            for bit in [PERF_SAMPLE_IDENTIFIER, PERF_SAMPLE_IP, PERF_SAMPLE_TID] where sampleType & UInt64(bit.rawValue) != 0 { offset += 8 }
            return offset + 8 <= bytes.count ? bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) : 0
        }
        guard let timeOffset = trailerTimeOffset, bytes.count >= 8 + sampleIDSize else { return 0 }
        return bytes.loadUnaligned(fromByteOffset: bytes.count - sampleIDSize + timeOffset, as: UInt64.self)
    }

    /// Parses one record; `bytes` holds exactly the record, header included.
    public func parse(_ bytes: UnsafeRawBufferPointer) -> PerfRecord? {
        var cursor = Cursor(bytes)
        guard let type = cursor.u32(), let misc = cursor.u16(), cursor.u16() != nil else { return nil }
        let sampleIDSize = self.sampleIDSize
        let trailerTime: UInt64 = {
            guard let timeOffset = trailerTimeOffset, bytes.count >= 8 + sampleIDSize else { return 0 }
            return bytes.loadUnaligned(fromByteOffset: bytes.count - sampleIDSize + timeOffset, as: UInt64.self)
        }()
        switch type {
        case PERF_RECORD_SAMPLE.rawValue:
            return parseSample(&cursor, misc: misc).map(PerfRecord.sample)
        case PERF_RECORD_MMAP2.rawValue:
            guard let pid = cursor.i32(), let tid = cursor.i32(), let start = cursor.u64(), let length = cursor.u64(),
                  let pgoff = cursor.u64() else { return nil }
            var buildID: [UInt8]?
            var inode: UInt64 = 0
            var device: UInt64 = 0
            if misc & UInt16(PERF_RECORD_MISC_MMAP_BUILD_ID) != 0 {
                guard let size = cursor.u8(), cursor.u8() != nil, cursor.u16() != nil, let raw = cursor.bytes(20) else { return nil }
                buildID = Array(raw.prefix(Int(min(size, 20))))
            } else {
                guard let major = cursor.u32(), let minor = cursor.u32(), let ino = cursor.u64(), cursor.u64() != nil else { return nil }
                inode = ino
                device = UInt64(major) << 32 | UInt64(minor)
            }
            guard let prot = cursor.u32(), cursor.u32() != nil else { return nil }
            let path = cursor.cString(limit: bytes.count - cursor.offset - sampleIDSize)
            return .mmap(MmapRecord(pid: pid, tid: tid, start: start, length: length, fileOffset: pgoff, inode: inode,
                                    device: device, protection: prot, buildID: buildID, path: path, time: trailerTime))
        case PERF_RECORD_COMM.rawValue:
            guard let pid = cursor.i32(), let tid = cursor.i32() else { return nil }
            let name = cursor.cString(limit: bytes.count - cursor.offset - sampleIDSize)
            return .comm(CommRecord(pid: pid, tid: tid, name: name, isExec: misc & UInt16(PERF_RECORD_MISC_COMM_EXEC) != 0, time: trailerTime))
        case PERF_RECORD_FORK.rawValue, PERF_RECORD_EXIT.rawValue:
            guard let pid = cursor.i32(), let ppid = cursor.i32(), let tid = cursor.i32(), let ptid = cursor.i32(),
                  let time = cursor.u64() else { return nil }
            let task = TaskRecord(pid: pid, parentPid: ppid, tid: tid, parentTid: ptid, time: time)
            return type == PERF_RECORD_FORK.rawValue ? .fork(task) : .exit(task)
        case PERF_RECORD_LOST.rawValue:
            guard cursor.u64() != nil, let lost = cursor.u64() else { return nil }
            return .lost(count: lost, time: trailerTime)
        case PERF_RECORD_LOST_SAMPLES.rawValue:
            guard let lost = cursor.u64() else { return nil }
            return .lost(count: lost, time: trailerTime)
        case PERF_RECORD_THROTTLE.rawValue, PERF_RECORD_UNTHROTTLE.rawValue:
            return .throttle(time: cursor.u64() ?? trailerTime)
        default:
            return .other(type: type, time: trailerTime)
        }
    }

    private func parseSample(_ cursor: inout Cursor, misc: UInt16) -> SampleRecord? {
        func has(_ bit: perf_event_sample_format) -> Bool { sampleType & UInt64(bit.rawValue) != 0 }
        // Formats whose length Flare cannot know without more of the attr.
        guard !has(PERF_SAMPLE_READ), !has(PERF_SAMPLE_BRANCH_STACK) else { return nil }
        var sample = SampleRecord(pid: 0, tid: 0, time: 0, cpu: 0, period: 1, ip: 0, callchain: [], isKernelIP: false)
        if has(PERF_SAMPLE_IDENTIFIER) { guard cursor.u64() != nil else { return nil } }
        if has(PERF_SAMPLE_IP) { guard let ip = cursor.u64() else { return nil }; sample.ip = ip }
        if has(PERF_SAMPLE_TID) {
            guard let pid = cursor.i32(), let tid = cursor.i32() else { return nil }
            sample.pid = pid
            sample.tid = tid
        }
        if has(PERF_SAMPLE_TIME) { guard let time = cursor.u64() else { return nil }; sample.time = time }
        if has(PERF_SAMPLE_ADDR) { guard cursor.u64() != nil else { return nil } }
        if has(PERF_SAMPLE_ID) { guard cursor.u64() != nil else { return nil } }
        if has(PERF_SAMPLE_STREAM_ID) { guard cursor.u64() != nil else { return nil } }
        if has(PERF_SAMPLE_CPU) { guard let cpu = cursor.u32(), cursor.u32() != nil else { return nil }; sample.cpu = cpu }
        if has(PERF_SAMPLE_PERIOD) { guard let period = cursor.u64() else { return nil }; sample.period = period }
        if has(PERF_SAMPLE_CALLCHAIN) {
            guard let count = cursor.u64(), count <= 4096, let chain = cursor.u64Array(Int(count)) else { return nil }
            sample.callchain = chain
        }
        if has(PERF_SAMPLE_RAW) {
            // u32 size, then the bytes; the pair is padded to 8 bytes.
            guard let size = cursor.u32(), cursor.bytes(Int(size)) != nil else { return nil }
            cursor.offset = (cursor.offset + 7) & ~7
        }
        if has(PERF_SAMPLE_REGS_USER) {
            // abi, then one u64 per mask bit unless abi is NONE (a kernel thread).
            guard let abi = cursor.u64() else { return nil }
            if abi != 0 {
                guard let registers = cursor.u64Array(userRegisterCount) else { return nil }
                if userRegisterCount == UserRegisters.count { sample.userRegisters = registers }
            }
        }
        if has(PERF_SAMPLE_STACK_USER) {
            // size, the bytes, then how many of them are valid.
            guard let size = cursor.u64(), size <= 65536, let stack = cursor.bytes(Int(size)) else { return nil }
            if size > 0 {
                guard let valid = cursor.u64() else { return nil }
                sample.userStack = Array(stack.prefix(Int(min(valid, size))))
            }
        }
        let mode = Int32(misc) & Int32(PERF_RECORD_MISC_CPUMODE_MASK)
        sample.isKernelIP = mode == Int32(PERF_RECORD_MISC_KERNEL)
        return sample
    }
}

/// Bounds-checked little-endian reads from a record.
struct Cursor {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private mutating func load<T: FixedWidthInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard offset + size <= bytes.count else { return nil }
        defer { offset += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    mutating func u8() -> UInt8? { load(UInt8.self) }
    mutating func u16() -> UInt16? { load(UInt16.self) }
    mutating func u32() -> UInt32? { load(UInt32.self) }
    mutating func i32() -> Int32? { load(Int32.self) }
    mutating func u64() -> UInt64? { load(UInt64.self) }

    mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, offset + count <= bytes.count else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    mutating func u64Array(_ count: Int) -> [UInt64]? {
        guard let raw = bytes(count * 8) else { return nil }
        return (0..<count).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
    }

    /// A NUL-terminated string within the next `limit` bytes.
    mutating func cString(limit: Int) -> String {
        let end = min(bytes.count, offset + max(0, limit))
        var stop = offset
        while stop < end && bytes[stop] != 0 { stop += 1 }
        defer { offset = end }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<stop]), as: UTF8.self)
    }
}
