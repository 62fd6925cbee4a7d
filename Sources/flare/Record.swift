import ArgumentParser
import FlareProfile
import FlareRecorder
import FlareSampler
import Glibc

extension RecordOptions.CallGraph: ExpressibleByArgument {}

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Profile a command, a running process, or the whole machine.",
        discussion: """
            Samples every thread of the target with the kernel's cpu-clock event and
            prints the top functions. Examples:

              flare record -- ./my-program --its-flags     profile a command until it exits
              flare record -p 1234 -d 30s -o app.pb.gz     a running process, 30 s, to pprof
              flare record -a -d 10s --format folded       the whole machine, folded stacks

            Ctrl-C stops the recording and still writes the profile. Needs root, or
            CAP_PERFMON, or a kernel.perf_event_paranoid low enough for the target.
            """
    )

    @Option(name: [.customShort("F"), .long], help: "Samples per second per CPU.")
    var frequency: UInt64 = 99

    @Option(name: [.customShort("d"), .long], help: "Stop after this long: 30s, 500ms, 2m, 1h (default: until the target exits or Ctrl-C).")
    var duration: String?

    @Option(name: .customShort("p"), help: "Profile the running process with this pid, and all its threads.")
    var pid: Int32?

    @Flag(name: [.customShort("a"), .customLong("all")], help: "Profile every process on every CPU.")
    var allProcesses = false

    @Option(help: "How to walk user stacks: dwarf (complete stacks through code without frame pointers) or fp (frame pointers only, cheapest).")
    var callGraph: RecordOptions.CallGraph = .dwarf

    @Option(help: "Bytes of user stack copied per sample for --call-graph dwarf (8 to 65528).")
    var stackSize: UInt32 = 16384

    @Option(name: [.customShort("o"), .long], help: "Write the profile to this file (pprof .pb.gz unless --format says otherwise).")
    var output: String?

    @Option(help: "Output format: pprof, folded or summary (default: pprof with -o, else summary).")
    var format: ProfileOutput.Format?

    @Option(help: "Rows in each table of the summary.")
    var top: Int = 15

    @Option(help: "Summarize CPU by function or by span (the local root span's name).")
    var by: SummaryGrouping = .function

    @Flag(name: .customLong("no-span-labels"), help: "Do not read span context (FLARE_SLOTS, OTEL_CTX) from the targets.")
    var noSpanLabels = false

    @Flag(name: .customLong("compare-span-readers"), help: .hidden)
    var compareSpanReaders = false

    @Flag(name: [.customShort("q"), .long], help: "Do not print the summary.")
    var quiet = false

    @Flag(inversion: .prefixedNo, help: "Show each inlined call as a frame of its own (from DWARF debug info).")
    var inline = true

    @Option(name: .customLong("debuginfod"),
            help: "debuginfod servers (space-separated URLs) to fetch debug info missing here from (default: $DEBUGINFOD_URLS; \"\" for none).")
    var debuginfodURLs: String?

    @Argument(parsing: .postTerminator, help: "The command to run and profile, after --.")
    var command: [String] = []

    enum SummaryGrouping: String, ExpressibleByArgument, CaseIterable {
        case function, span
    }

    func validate() throws {
        let targets = (pid != nil ? 1 : 0) + (allProcesses ? 1 : 0) + (command.isEmpty ? 0 : 1)
        guard targets == 1 else {
            throw ValidationError("give exactly one target: -- COMMAND, -p PID or -a")
        }
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    /// Checks made before anything starts, each failing with one line that says what to fix.
    private func checkInputs() throws -> Double? {
        do {
            guard frequency >= 1 && frequency <= Linux.maxSampleRate else {
                throw SamplerError.frequencyOutOfRange(requested: frequency, maximum: Linux.maxSampleRate)
            }
            if let output { try OutputFile.checkWritable(output) }
            guard stackSize >= 8 && stackSize <= SamplingOptions.maxUserStackBytes else {
                throw InputError(description: "--stack-size \(stackSize) is out of range: use 8 to \(SamplingOptions.maxUserStackBytes) bytes")
            }
            return try duration.map(Self.parseDuration)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }

    func run() throws {
        let target: RecordOptions.Target
        if let pid { target = .process(pid) } else if allProcesses { target = .system } else { target = .command(command) }
        var options = RecordOptions(target: target, frequency: frequency, duration: try checkInputs(),
                                    callGraph: callGraph, stackBytes: stackSize)
        options.inlineFrames = inline
        options.spanLabels = !noSpanLabels
        options.comparesNewestSpanReader = compareSpanReaders
        options.debuginfod = DebuginfodEnvironment.settings(urls: debuginfodURLs)
        let result: RecordResult
        do {
            result = try Recorder.record(options)
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }

        try ProfileOutput.emit(result, to: output, format: format, top: top, quiet: quiet, bySpan: by == .span)
    }

    static func parseDuration(_ text: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(text)
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value > 0, value.isFinite else {
            throw InputError(description: "invalid duration '\(text)': use a positive number with s, ms, m or h, like 30s")
        }
        return value * scale
    }
}

func printError(_ message: String) {
    StandardStream.error.write("flare: error: \(message)\n")
}
