import ArgumentParser
import FlareRecorder

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a perf.data file into a pprof profile, with Flare's unwinding and symbols.",
        discussion: """
            Reads what `perf record` wrote (use `--call-graph dwarf` for complete stacks
            through code without frame pointers) and unwinds and symbolizes it offline:
            nothing is read from the recorded processes, which may be long gone.

              perf record --call-graph dwarf -F 999 -- ./my-program
              flare convert perf.data -o my-program.pb.gz
            """
    )

    @Argument(help: "The perf.data file to read.")
    var input: String = "perf.data"

    @Option(name: [.customShort("o"), .long], help: "Write the profile to this file (pprof .pb.gz unless --format says otherwise).")
    var output: String?

    @Option(help: "Output format: pprof, folded or summary (default: pprof with -o, else summary).")
    var format: ProfileOutput.Format?

    @Option(help: "Look for the recorded files (and their separate debug files, under usr/lib/debug) in this directory first, like perf's --symfs.")
    var symfs: String?

    @Option(help: ArgumentHelp("Use at most this many bytes of each recorded stack copy.",
                               discussion: "Shows what a smaller `flare record --stack-size` would have unwound."))
    var stackSize: Int?

    @Option(help: "Rows in each table of the summary.")
    var top: Int = 15

    @Flag(name: [.customShort("q"), .long], help: "Do not print the summary.")
    var quiet = false

    @Flag(inversion: .prefixedNo, help: "Show each inlined call as a frame of its own (from DWARF debug info).")
    var inline = true

    func run() throws {
        if let stackSize, stackSize < 0 {
            printError("--stack-size must be at least 0 bytes (got \(stackSize))")
            throw ExitCode.failure
        }
        do {
            if let output { try OutputFile.checkWritable(output) }
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
        let result: RecordResult
        do {
            result = try PerfDataConverter.convert(path: input, symfs: symfs, inlineFrames: inline, stackSize: stackSize)
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        try ProfileOutput.emit(result, to: output, format: format, top: top, quiet: quiet)
    }
}
