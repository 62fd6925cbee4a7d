import ArgumentParser
import FlareFlameGraph
import FlareProfile
import FlareViewer
import Foundation

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a profile as one self-contained HTML flame graph that opens offline.",
        discussion: """
            The file holds the viewer (flame graph, top functions, sandwich view, search) and the \
            profile's call tree; it needs no network and no store.

              flare record -o app.pb.gz -- ./app
              flare export --html app.pb.gz -o app.html

            The input is a pprof file (gzip-compressed or not), or a JSON document saved from the \
            store's /api/v1/flamegraph or /api/v1/diff (a diff opens in the diff view).

            The page inlines the viewer built into flare; --viewer-dir or $FLARE_VIEWER_DIR \
            inline a viewer/ directory instead (to work on it).
            """
    )

    @Flag(help: "Write HTML (the only export format today).")
    var html = false

    @Argument(help: "The pprof profile (.pb.gz) or flame-graph JSON document to export.")
    var input: String

    @Option(name: [.customShort("o"), .long], help: "The HTML file to write.")
    var output: String

    @Option(help: "The page title (default: the input file's name).")
    var title: String?

    @Option(name: .customLong("max-nodes"), help: "Keep at most this many call-tree nodes, the largest by total.")
    var maxNodes = 200_000

    @Option(name: .customLong("viewer-dir"), help: "Inline the viewer from this directory (holding index.html) instead of the one built in.")
    var viewerDirectory: String?

    func run() throws {
        do {
            guard maxNodes >= 1 else { throw InputError(description: "--max-nodes must be at least 1") }
            try OutputFile.checkWritable(output)
            guard let data = FileManager.default.contents(atPath: input) else {
                throw InputError(description: "cannot read \(input): check the path and permissions")
            }
            let bytes = [UInt8](data)
            let name = title ?? (input.split(separator: "/").last.map(String.init) ?? input)
            let document: String
            if Self.looksLikeJSON(bytes) {
                document = String(decoding: bytes, as: UTF8.self)
            } else {
                let profile: Profile
                do { profile = try Profile(pprofFile: bytes) } catch {
                    throw InputError(description: "\(input) is neither a pprof profile nor a flame-graph JSON document: \(error)")
                }
                let stacks = try ProfileStacks(profile)
                document = FlameGraphDocument.json(stacks: stacks, title: name, maxNodes: maxNodes, labels: FlameGraphDocument.labelSummary(profile))
            }
            let assets = try ViewerAssets.locate(explicit: viewerDirectory)
            let page = try HTMLExport.render(documentJSON: document, title: name, assets: assets)
            try OutputFile.writeAtomically(Array(page.utf8), to: output)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }

    static func looksLikeJSON(_ bytes: [UInt8]) -> Bool {
        bytes.first { $0 != 0x20 && $0 != 0x0a && $0 != 0x0d && $0 != 0x09 } == UInt8(ascii: "{")
    }
}
