import ArgumentParser
import FlareFlameGraph
import FlareViewer
import FlareProfile
import Glibc

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two profiles or two store selections: which functions got hotter, and should this release ship?",
        discussion: """
            Each side is normalized to its own total (--absolute compares raw values); functions are \
            ranked by how much their self share changed, in percentage points, with the total share beside.

            Two pprof files:
              flare diff v1.pb.gz v2.pb.gz
            Two store selections (keys --target does not give come from --base; a version \
            without from/until means the whole time it was seen; `latest` and `previous` \
            name the newest two versions):
              flare diff --store http://127.0.0.1:4100 \\
                --base 'service=checkout,version=1.4' --target 'version=1.5'
              flare diff --store http://127.0.0.1:4100 \\
                --base 'service=checkout,from=now-2h,until=now-1h' \\
                --target 'from=now-1h,until=now'
            As a CI gate (docs/diff.md):
              flare diff --gate --json diff.json --store "$FLARE_STORE" \\
                --base 'service=checkout,version=previous' --target 'version=latest'

            Exit status: 0 compared (and the gate passed), 1 the gate failed, 2 the inputs could \
            not be compared (missing or corrupt file, empty selection, unknown service or version, \
            mismatched sample types, too few samples for the gate, store unreachable), 64 bad \
            command line.
            """
    )

    @Argument(help: "Two pprof files: the base, then the target.")
    var files: [String] = []

    @Option(help: "The store to query, like http://127.0.0.1:4100 (then use --base and --target).")
    var store: String?

    @Option(help: "The base selection: service=S,version=V,KEY=VALUE (series labels),from=T,until=T,span_id=…,trace_id=….")
    var base: String?

    @Option(help: "The target selection; keys not given are taken from --base.")
    var target: String?

    @Flag(help: "Compare raw values instead of shares of each side's total.")
    var absolute = false

    @Option(help: "Rows of the table.")
    var top = 15

    @Option(help: "Write the machine-readable report (JSON) to this file; - for stdout.")
    var json: String?

    @Option(help: "Write the differential flame graph's data, as GET /api/v1/diff returns it, to this file.")
    var document: String?

    @Option(help: "Write the differential flame graph (red grew, blue shrank) as one HTML file that opens offline.")
    var html: String?

    @Flag(help: "Exit 1 when a function's share grew past the thresholds below (defaults: self +5 points, z ≥ 3, 1000 samples per side).")
    var gate = false

    @Option(name: .customLong("max-self-growth"), help: "Gate: the most a function's self share may grow, in percentage points (implies --gate).")
    var maxSelfGrowth: Double?

    @Option(name: .customLong("max-total-growth"), help: "Gate: the most a function's total share may grow, in points (implies --gate; off by default).")
    var maxTotalGrowth: Double?

    @Option(name: .customLong("min-z"), help: "Gate: count only growth at least this many standard errors above sampling noise.")
    var minZ = DiffGate.defaultMinZ

    @Option(name: .customLong("min-samples"), help: "Gate: each side needs at least this many samples for a verdict.")
    var minSamples = DiffGate.defaultMinSamples

    @Option(help: "The store's query token (visible in ps: prefer --token-file or $FLARE_QUERY_TOKEN).")
    var token: String?

    @Option(name: .customLong("token-file"), help: "File holding the store's query token (default: $FLARE_QUERY_TOKEN).")
    var tokenFile: String?

    @Flag(name: [.customShort("q"), .long], help: "Do not print the table (the gate's verdict is still printed).")
    var quiet = false

    static let badInput: Int32 = 2

    func run() throws {
        let comparison: DiffComparison
        do {
            comparison = try compare()
        } catch {
            printError("\(error)")
            throw ExitCode(Self.badInput)
        }
        let report = comparison.report
        let gateSettings = (gate || maxSelfGrowth != nil || maxTotalGrowth != nil)
            ? DiffGate(maxSelfGrowth: maxSelfGrowth ?? (maxTotalGrowth == nil ? DiffGate.defaultMaxSelfGrowth : nil),
                       maxTotalGrowth: maxTotalGrowth, minZ: minZ, minSamples: minSamples)
            : nil
        let verdict = gateSettings.map { $0.evaluate(report) }
        do {
            if let json {
                let text = report.json(gate: gateSettings, verdict: verdict)
                if json == "-" { StandardStream.out.write(text) } else { try OutputFile.writeAtomically(Array(text.utf8), to: json) }
            }
            if document != nil || html != nil {
                let documentJSON = try comparison.document()
                if let document { try OutputFile.writeAtomically(Array(documentJSON.utf8), to: document) }
                if let html {
                    let title = "flare diff: " + (files.count == 2 ? "\(files[0]) → \(files[1])" : "\(base ?? "") → \(target ?? "")")
                    try OutputFile.writeAtomically(Array(try HTMLExport.render(documentJSON: documentJSON, title: title).utf8), to: html)
                }
            }
        } catch {
            printError("\(error)")
            throw ExitCode(Self.badInput)
        }
        let stream: StandardStream = json == "-" ? .error : .out
        if !quiet {
            stream.write(report.table(top: top, gate: gateSettings, verdict: verdict))
        } else if let gateSettings, let verdict {
            stream.write(DiffReport.verdictText(gate: gateSettings, verdict: verdict))
        }
        if let verdict {
            if verdict.tooFewSamples != nil { throw ExitCode(Self.badInput) }
            if !verdict.passed { throw ExitCode.failure }
        }
    }

    private func compare() throws -> DiffComparison {
        try validateOptions()
        let mode: DiffReport.Mode = absolute ? .absolute : .normalized
        if let store {
            let client = try StoreClient(baseURL: store, token: try queryToken())
            return try StoreDiff(client: client, base: base ?? "", target: target ?? "", mode: mode).compare()
        }
        return try FileDiff.compare(basePath: files[0], targetPath: files[1], mode: mode)
    }

    private func validateOptions() throws {
        if store != nil {
            guard files.isEmpty else { throw InputError(description: "give either two files or --store with --base and --target, not both") }
            guard base != nil, target != nil else {
                throw InputError(description: "--store needs --base and --target, like --base 'service=checkout,version=1.4' --target 'version=1.5'")
            }
        } else {
            guard base == nil, target == nil else { throw InputError(description: "--base and --target select from a store: add --store URL") }
            guard files.count == 2 else {
                throw InputError(description: "give two pprof files (base, then target), or --store URL with --base and --target")
            }
        }
        guard top >= 0 else { throw InputError(description: "--top must be 0 or more") }
        guard minSamples >= 0, minZ >= 0 else { throw InputError(description: "--min-samples and --min-z must not be negative") }
        for (name, value) in [("--max-self-growth", maxSelfGrowth), ("--max-total-growth", maxTotalGrowth)] {
            if let value, !(value >= 0 && value <= 100) { throw InputError(description: "\(name) is in percentage points: use a number from 0 to 100") }
        }
        for path in [json, document, html].compactMap({ $0 }) where path != "-" { try OutputFile.checkWritable(path) }
        if document == "-" || html == "-" { throw InputError(description: "--document and --html need a file name") }
    }

    private func queryToken() throws -> String? {
        if let token { return token }
        if let tokenFile {
            guard let bytes = FileBytes.read(tokenFile) else {
                throw InputError(description: "cannot read the token file \(tokenFile): \(String(cString: strerror(errno)))")
            }
            let text = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" }).first.map(String.init) ?? ""
            let value = text.split(separator: " ").joined()
            guard !value.isEmpty else { throw InputError(description: "the token file \(tokenFile) is empty") }
            return value
        }
        return Environment.variables["FLARE_QUERY_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// What both kinds of diff produce: the report, and the viewer's document on demand.
struct DiffComparison {
    var report: DiffReport
    /// The `/api/v1/diff`-shaped document of the differential flame graph.
    ///
    var document: () throws -> String
}
