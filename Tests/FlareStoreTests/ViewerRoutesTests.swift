import FlareFlameGraph
import FlareProfile
import FlareViewer
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import FlareStore

/// The routes the viewer adds to the store: recent traces (on both backends),
/// the viewer's files, and HTML export.
@Suite("Viewer routes", .serialized)
struct ViewerRoutesTests {
    typealias S = StoreTestSupport.Sample
    typealias H = HTTPTestSupport
    static let t0: Int64 = 1_700_000_000_000_000_000
    static let traceA = "0000000000000000000000000000aa01", traceB = "0000000000000000000000000000bb02"
    static let traceOther = "0000000000000000000000000000cc03"
    static let rootA = "00000000000000a1", childA = "00000000000000a2", rootB = "00000000000000b1", rootOther = "00000000000000c1"
    static let range = "from=\(t0 / 1_000_000_000 - 60)&until=\(t0 / 1_000_000_000 + 3600)"
    static var viewerDirectory: String { StoreTestSupport.packageRoot.appendingPathComponent("viewer").path }

    static func span(_ trace: String, _ id: String, parent: String = "", name: String, service: String = "checkout", start: Int64, end: Int64) -> SpanRecord {
        SpanRecord(traceID: trace, spanID: id, parentSpanID: parent, name: name, service: service, kind: 2, startNanos: start, endNanos: end)
    }

    @Test("GET /api/v1/traces lists recent traces with root, duration, span count and CPU", arguments: Backend.allCases)
    func recentTraces(backend: Backend) async throws {
        guard let storage = try await backend.make() else { return }
        let second: Int64 = 1_000_000_000
        try await storage.insert(spans: [
            Self.span(Self.traceA, Self.rootA, name: "GET /checkout", start: Self.t0 + 10 * second, end: Self.t0 + 13 * second),
            Self.span(Self.traceA, Self.childA, parent: Self.rootA, name: "SELECT", service: "db", start: Self.t0 + 11 * second, end: Self.t0 + 14 * second),
            Self.span(Self.traceB, Self.rootB, name: "GET /cart", start: Self.t0 + 20 * second, end: Self.t0 + 21 * second),
            Self.span(Self.traceOther, Self.rootOther, name: "other", service: "billing", start: Self.t0 + 30 * second, end: Self.t0 + 31 * second),
        ])
        _ = try await storage.insert(try StoreTestSupport.window([
            S(stack: ["main", "handle"], count: 5, spanID: Self.rootA, traceID: Self.traceA),
            S(stack: ["main", "query"], count: 7, spanID: Self.childA, traceID: Self.traceA),
            S(stack: ["main", "idle"], count: 4),
        ], key: "w1", start: Self.t0))
        try await H.withStore(storage: storage) { client, _ in
            let json = try H.json(try await H.get(client, "/api/v1/traces?service=checkout&\(Self.range)"))
            let traces = json["traces"] as? [[String: Any]] ?? []
            // Newest first; billing's trace has no checkout span.
            #expect(traces.map { $0["trace_id"] as? String } == [Self.traceB, Self.traceA])
            let a = traces.last ?? [:]
            #expect(a["root_name"] as? String == "GET /checkout")
            #expect(a["root_service"] as? String == "checkout")
            #expect(a["spans"] as? Int == 2)
            #expect(a["duration_ns"] as? Int == Int(4 * second))
            #expect(a["start_ns"] as? Int == Int(Self.t0 + 10 * second))
            #expect(a["samples"] as? Int == 12)
            #expect(a["cpu_ns"] as? Int == Int(12 * StoreTestSupport.period))
            #expect(traces.first?["samples"] as? Int == 0)

            let limited = try H.json(try await H.get(client, "/api/v1/traces?service=checkout&\(Self.range)&limit=1"))
            #expect((limited["traces"] as? [[String: Any]])?.count == 1)
            let any = try H.json(try await H.get(client, "/api/v1/traces?\(Self.range)"))
            #expect((any["traces"] as? [[String: Any]])?.count == 3)
            // A range that ends before the spans start holds none of them.
            let early = try H.json(try await H.get(client, "/api/v1/traces?service=checkout&from=\(Self.t0 / 1_000_000_000 - 60)&until=\(Self.t0 / 1_000_000_000 + 5)"))
            #expect((early["traces"] as? [[String: Any]])?.isEmpty == true)
            let bad = try await H.get(client, "/api/v1/traces?service=checkout&limit=0")
            #expect(bad.status == .badRequest)
        }
    }

    @Test("the viewer built into the binary is viewer/ as it is now, byte for byte")
    func embeddedViewerIsCurrent() throws {
        let onDisk = try ViewerAssets(directory: Self.viewerDirectory)
        let names = onDisk.fileNames
        #expect(names.contains("index.html") && names.contains("app.js"))
        #expect(ViewerAssets.embedded.fileNames == names)
        for name in names {
            #expect(ViewerAssets.embedded.file(named: name)?.bytes == onDisk.file(named: name)?.bytes, "\(name) differs from the embedded copy")
        }
        #expect(ViewerAssets.embedded.origin == "embedded")
        #expect(ViewerAssets.embedded.file(named: "missing.js") == nil)
    }

    @Test("the store serves the viewer's files with their types, a strict policy, and nothing outside viewer/")
    func servesViewer() async throws {
        let assets = ViewerAssets.embedded
        try await H.withStore({ $0.viewer = assets; $0.traceURLTemplate = "http://jaeger:16686/trace/{trace_id}" }) { client, _ in
            let index = try await H.get(client, "/")
            #expect(index.status == .ok)
            #expect(index.headers[.contentType] == "text/html; charset=utf-8")
            #expect(H.text(index).contains("<script type=\"module\" src=\"ui/app.js\">"))
            #expect(index.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            let script = try await H.get(client, "/ui/app.js")
            #expect(script.status == .ok)
            #expect(script.headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(try await H.get(client, "/ui/style.css").headers[.contentType] == "text/css; charset=utf-8")
            let config = try H.json(try await H.get(client, "/ui/config.json"))
            #expect(config["trace_url_template"] as? String == "http://jaeger:16686/trace/{trace_id}")
            for path in ["/ui/..%2FPackage.swift", "/ui/%2E%2E%2FREADME.md", "/ui/../Package.swift", "/ui/.hidden.js", "/ui/index.html%00.js",
                         "/ui/missing.js", "/ui/README.md", "/ui/..", "/ui/%2e%2e"] {
                let response = try await H.get(client, path)
                #expect(response.status == .notFound, "\(path) answered \(response.status)")
                #expect(!H.text(response).contains("swift-tools-version"), "\(path) leaked a file")
            }
        }
        // Started without a viewer, the API still works and / says so.
        try await H.withStore { client, _ in
            let response = try await H.get(client, "/")
            #expect(response.status == .notFound)
            #expect(H.text(response).contains("without the viewer"))
        }
    }

    @Test("GET /api/v1/export downloads the viewer with the selection's flame graph or diff inlined")
    func exportRoute() async throws {
        let assets = try ViewerAssets(directory: Self.viewerDirectory)
        try await H.withStore({ $0.viewer = assets }) { client, storage in
            _ = try await storage.insert(try StoreTestSupport.window([S(stack: ["main", "parse"], count: 9)], key: "x1", start: Self.t0))
            let response = try await H.get(client, "/api/v1/export?service=checkout&\(Self.range)")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/html; charset=utf-8")
            #expect(response.headers[.contentDisposition] == "attachment; filename=\"flare-checkout.html\"")
            let html = H.text(response)
            let graph = H.text(try await H.get(client, "/api/v1/flamegraph?service=checkout&\(Self.range)"))
            #expect(html.contains("<script type=\"application/json\" id=\"flare-data\">" + graph + "</script>"))
            let diff = H.text(try await H.get(client, "/api/v1/export?kind=diff&service=checkout&\(Self.range)"))
            #expect(diff.contains("\"total_a\":9"))
            #expect(try await H.get(client, "/api/v1/export?kind=pie&service=checkout").status == .badRequest)
        }
    }

    @Test("the file-name rule admits only single plain names")
    func servableNames() {
        #expect(ViewerAssets.isServableName("app.js"))
        #expect(ViewerAssets.isServableName("style.css"))
        for name in ["../app.js", "a/b.js", ".js", "app.js.map", "app", "..", "app.exe", "a b.js", "%2e.js", "app.JS"] {
            #expect(!ViewerAssets.isServableName(name), "\(name)")
        }
    }

    @Test("an export inlines the viewer and the document, and a hostile name cannot end the script")
    func exportIsSelfContained() throws {
        let assets = try ViewerAssets(directory: Self.viewerDirectory)
        let hostile = "</script><script>alert(1)</script>"
        var tree = FlameTree(columns: 1)
        tree.add(frames: [1, 0], value: 3, column: 0)
        var document = "{\"unit\":\"samples\",\"total\":3"
        FlameGraphJSON.writeTree(tree, kept: tree.keptNodes(maxNodes: 10), names: [0: FunctionName(name: "main", file: ""), 1: FunctionName(name: hostile, file: "x")],
                                 columns: FlameGraphJSON.Column.single, into: &document)
        document += "}"
        // Also a document that did not come through FlameGraphJSON's escaping.
        let raw = "{\"unit\":\"samples\",\"title\":\"</script><img src=x>\",\"names\":[\"total\"],\"files\":[\"\"],\"nodes\":{\"name\":[0],\"parent\":[-1],\"total\":[0],\"self\":[0]}}"
        for doc in [document, raw] {
            let html = try HTMLExport.render(documentJSON: doc, title: "<b>t</b>", assets: assets)
            // Exactly the two script elements the export writes: the data and the viewer.
            #expect(html.components(separatedBy: "<script").count - 1 == 2)
            #expect(html.components(separatedBy: "</script>").count - 1 == 2)
            #expect(!html.contains("src=\"ui/app.js\""))
            #expect(!html.contains("href=\"ui/style.css\""))
            #expect(html.contains("<title>&lt;b&gt;t&lt;/b&gt;</title>"))
            #expect(html.contains("Content-Security-Policy"))
            #expect(!html.contains("\nimport "))
            #expect(!html.contains("\nexport "))
            for remote in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "@import", "url(http", "url(//"] {
                #expect(!html.contains(remote), "an export must load nothing from the network: \(remote)")
            }
        }
        #expect(throws: ViewerAssetsError.self) { try ViewerAssets(directory: StoreTestSupport.temporaryDirectory("no-viewer")) }
    }
}
