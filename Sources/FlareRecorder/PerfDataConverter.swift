import FlareSampler
import FlareSymbols
import FlareProcesses
import FlareUnwind

/// Runs Flare's unwinding and symbolization over a `perf.data` file recorded
/// with `perf record` (`--call-graph dwarf` gives complete stacks; `-g` gives
/// frame-pointer ones), offline: nothing is read from /proc.
public enum PerfDataConverter {
    /// `stackSize` keeps only that many bytes of each recorded stack copy: what
    /// a smaller `flare record --stack-size` would have unwound.
    public static func convert(path: String, symfs: String? = nil, inlineFrames: Bool = true,
                               stackSize: Int? = nil) throws(PerfDataFile.Error) -> RecordResult {
        let file = try PerfDataFile(path: path)
        let locator = FileLocator.offline(symfs: symfs)
        // Separate debug files come from the same tree as the binaries.
        let symbolizer = Symbolizer(debugRoot: (symfs ?? "") + "/usr/lib/debug", expandInlines: inlineFrames)
        let unwindTables = UnwindTableCache(locator: locator)
        var pipeline = SamplePipeline(unwinder: DwarfUnwinder(cache: unwindTables), symbolizer: symbolizer, locator: locator)
        // In time order, so every mapping is known before the samples that use it.
        file.forEachRecordInTimeOrder { record in
            if let stackSize, case .sample(var sample) = record, sample.userStack.count > stackSize {
                sample.userStack.removeSubrange(stackSize...)
                pipeline.consume([.sample(sample)])
            } else {
                pipeline.consume([record])
            }
        }
        let span = pipeline.lastSampleTime >= pipeline.firstSampleTime ? pipeline.lastSampleTime - pipeline.firstSampleTime : 0
        return Recorder.result(of: pipeline, frequency: file.sampleFrequency == 0 ? 1 : file.sampleFrequency,
                               durationSeconds: Double(span) / 1e9, startedWall: 0, symbolizer: symbolizer,
                               unwindTables: unwindTables, lostRecords: pipeline.lostRecords, commandExitStatus: nil,
                               stopReason: "converted from \(path)")
    }
}
