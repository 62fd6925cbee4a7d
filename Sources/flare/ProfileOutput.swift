import ArgumentParser
import FlareProfile
import FlareRecorder

/// Writes a recording where the user asked: a pprof or folded file, folded
/// stacks on stdout, and the summary on the terminal.
enum ProfileOutput {
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case pprof, folded, summary
    }

    static func emit(_ result: RecordResult, to output: String?, format: Format?, top: Int, quiet: Bool, bySpan: Bool = false) throws {
        let chosen = format ?? (output != nil ? .pprof : .summary)
        var summaryStream = StandardStream.out
        switch (chosen, output) {
        case (.pprof, let path?):
            try write(result.profile.gzippedPprof(), to: path)
        case (.pprof, nil):
            throw ValidationError("pprof output needs a file: add -o FILE.pb.gz")
        case (.folded, let path?):
            try write(Array(result.profile.folded().utf8), to: path)
        case (.folded, nil):
            StandardStream.out.write(result.profile.folded())
            summaryStream = .error
        case (.summary, let path?):
            try write(Array(result.summary(top: top, bySpan: bySpan).utf8), to: path)
        case (.summary, nil):
            break
        }
        if !quiet && !(chosen == .summary && output != nil) {
            summaryStream.write(result.summary(top: top, bySpan: bySpan))
        }
        if let output, !quiet { StandardStream.error.write("Wrote \(output)\n") }
    }

    private static func write(_ bytes: [UInt8], to path: String) throws {
        do {
            try OutputFile.writeAtomically(bytes, to: path)
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
    }
}
