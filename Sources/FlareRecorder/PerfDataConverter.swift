import FlareSampler
import FlareSymbols
import FlareProcesses
import FlareUnwind

/// Runs Flare's unwinding and symbolization over a `perf.data` file recorded
/// with `perf record` (`--call-graph dwarf` gives complete stacks; `-g` gives
/// frame-pointer ones), offline: nothing is read from /proc.
public enum PerfDataConverter {
    public static func convert(path: String, symfs: String? = nil, inlineFrames: Bool = true) throws(PerfDataFile.Error) -> RecordResult {
        let file = try PerfDataFile(path: path)
        let locator = FileLocator.offline(symfs: symfs)
        let symbolizer = Symbolizer(expandInlines: inlineFrames)
        let unwindTables = UnwindTableCache(locator: locator)
        var pipeline = SamplePipeline(unwinder: DwarfUnwinder(cache: unwindTables), symbolizer: symbolizer, locator: locator)
        // In time order, so every mapping is known before the samples that use it.
        file.forEachRecordInTimeOrder { pipeline.consume([$0]) }
        let span = pipeline.lastSampleTime >= pipeline.firstSampleTime ? pipeline.lastSampleTime - pipeline.firstSampleTime : 0
        return Recorder.result(of: pipeline, frequency: file.sampleFrequency == 0 ? 1 : file.sampleFrequency,
                               durationSeconds: Double(span) / 1e9, startedWall: 0, symbolizer: symbolizer,
                               unwindTables: unwindTables, lostRecords: pipeline.lostRecords, commandExitStatus: nil,
                               stopReason: "converted from \(path)")
    }
}
