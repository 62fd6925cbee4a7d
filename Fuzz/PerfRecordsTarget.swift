import FlareSampler

/// perf ring-buffer records, as the sampler drains them from the kernel and as
/// perf.data files hold them.
///
/// The input is 24 bytes of event description, then records back to back:
/// `sample_type` (u64), `sample_regs_user` (u64), then flags (bit 0:
/// `sample_id_all`). Records are split on their header's size field, as the
/// ring reader does; what is left at the end is parsed as one short record.
enum PerfRecordsTarget: FuzzTarget {
    static let name = "perf-records"

    static func run(_ data: UnsafeRawBufferPointer) {
        let input = FuzzBytes(bytes: data)
        let parser = PerfRecordParser(sampleType: input.u64(0), userRegisterMask: input.u64(8), sampleIDAll: input.u8(16) & 1 != 0)
        var offset = 24
        while offset < data.count {
            let size = Int(input.u32(offset + 4) >> 16)
            let record = input.slice(offset, size >= 8 ? size : data.count)
            _ = parser.time(of: record)
            if case .sample(let sample) = parser.parse(record) {
                FuzzCheck.require(sample.userStack.count <= record.count, "a sample holds more stack than its record")
                FuzzCheck.require(sample.callchain.count * 8 <= record.count, "a sample holds a longer callchain than its record")
            }
            guard size >= 8 else { break }
            offset += size
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    PerfRecordsTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
