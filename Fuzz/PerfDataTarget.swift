import FlareSampler

/// perf.data files, which `flare convert` and the unwind fixtures read: the
/// header, the first event's attributes, then every record in time order.
enum PerfDataTarget: FuzzTarget {
    static let name = "perf-data"

    nonisolated(unsafe) static let file = FuzzInputFile(name)

    static func run(_ data: UnsafeRawBufferPointer) {
        file.write(data)
        guard let perfData = try? PerfDataFile(path: file.path) else { return }
        var previous: UInt64 = 0
        var records = 0
        perfData.forEachRecordInTimeOrder { record in
            records += 1
            if case .sample(let sample) = record {
                FuzzCheck.require(sample.time >= previous, "samples out of time order: \(sample.time) after \(previous)")
                previous = sample.time
            }
        }
        FuzzCheck.require(records <= data.count / 8, "\(records) records out of \(data.count) bytes")
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    PerfDataTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
