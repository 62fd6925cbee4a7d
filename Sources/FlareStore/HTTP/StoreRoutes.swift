import FlareFlameGraph
import FlareProfile
import FlareViewer
import Foundation
import Hummingbird
import NIOCore

/// The store's HTTP API; docs/api.md describes every route.
struct StoreRoutes: Sendable {
    let engine: QueryEngine
    let configuration: StoreConfiguration
    let metrics: StoreMetrics
    let late: LateSymbolizer
    var storage: any ProfileStorage { engine.storage }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in try await self.health() }
        router.get("/metrics") { _, _ in try await self.prometheus() }
        router.post("/api/v1/profiles") { request, _ in try await self.ingestNative(request) }
        router.post("/ingest") { request, _ in try await self.ingestPyroscope(request) }
        router.post("/v1/traces") { request, _ in try await self.ingestTraces(request) }
        router.post("/api/v1/debuginfo/:build_id") { request, context in try await self.uploadDebugInfo(request, buildID: context.parameters.get("build_id") ?? "") }
        router.get("/api/v1/services") { _, _ in try await self.services() }
        router.get("/api/v1/labels") { request, _ in try await self.labelNames(request) }
        router.get("/api/v1/labels/:name/values") { request, context in try await self.labelValues(request, name: context.parameters.get("name") ?? "") }
        router.get("/api/v1/totals") { request, _ in try await self.totals(request) }
        router.get("/api/v1/flamegraph") { request, _ in try await self.flameGraph(request) }
        router.get("/api/v1/top") { request, _ in try await self.top(request) }
        router.get("/api/v1/pprof") { request, _ in try await self.pprof(request) }
        router.get("/api/v1/diff") { request, _ in try await self.diff(request) }
        router.get("/api/v1/traces") { request, _ in try await self.recentTraces(request) }
        router.get("/api/v1/versions") { request, _ in try await self.versions(request) }
        router.get("/api/v1/traces/:trace_id") { request, context in try await self.trace(context.parameters.get("trace_id") ?? "") }
        router.get("/api/v1/functions/spans") { request, _ in try await self.functionSpans(request) }
        router.get("/api/v1/export") { request, _ in try await self.export(request) }
        router.get("/") { _, _ in try self.viewerFile("index.html") }
        router.get("/ui/:file") { _, context in try self.viewerFile(context.parameters.get("file") ?? "") }
    }

    // MARK: Health and metrics

    func health() async throws -> Response {
        do {
            try await storage.check()
            return JSONResponse.make(.object([("status", "ok")]))
        } catch {
            return JSONResponse.error(status: .serviceUnavailable, message: "the database is not reachable: \(error)")
        }
    }

    func prometheus() async throws -> Response {
        let counts = try? await storage.counts()
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: metrics.render(counts: counts))))
    }

    // MARK: Ingest

    /// The body, refusing more than the configured limit before reading it when the length is announced.
    func readBody(_ request: Request, limit: Int? = nil, advice: String = "send smaller batches or raise --max-body") async throws -> [UInt8] {
        let limit = limit ?? configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw StoreError(.contentTooLarge, "the request body (\(length) bytes) is larger than the limit of \(limit) bytes; \(advice)")
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw StoreError(.contentTooLarge, "the request body is larger than the limit of \(limit) bytes; \(advice)")
        }
    }

    /// A debug file for a build-id: kept, and the functions of that file stored unnamed get their names.
    func uploadDebugInfo(_ request: Request, buildID: String) async throws -> Response {
        try LateSymbolizer.checkBuildID(buildID)
        let body = try await readBody(request, limit: configuration.maxDebugInfoBytes,
                                      advice: "strip what names do not need (objcopy --only-keep-debug --compress-debug-sections)")
        try late.save(buildID: buildID, bytes: body)
        let named = try await late.nameFunctions(buildID: buildID, storage: storage)
        if named > 0 { engine.forgetNames() }
        return JSONResponse.make(.object([("build_id", .string(buildID)), ("bytes", .int(Int64(body.count))), ("functions_named", .int(Int64(named)))]))
    }

    func store(_ window: PreparedWindow, bytes: Int) async throws -> Response {
        let outcome = try await storage.insert(window)
        if outcome == .stored, !window.unnamedFunctions.isEmpty, try await late.windowStored(window, storage: storage) > 0 {
            engine.forgetNames()
        }
        metrics.ingested(outcome == .stored ? "stored" : "duplicate", bytes: bytes)
        return JSONResponse.make(.object([
            ("stored", .bool(outcome == .stored)), ("duplicate", .bool(outcome == .duplicate)),
            ("window_id", .string(window.key)), ("service", .string(window.service)),
            ("samples", .int(window.total.samples)), ("stacks", .int(Int64(window.stacks.count))),
        ]))
    }

    func rejecting<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as StoreError {
            if error.status.code < 500 { metrics.ingested("rejected", bytes: 0) }
            throw error
        }
    }

    func ingestNative(_ request: Request) async throws -> Response {
        try await rejecting {
            let q = request.uri.queryParameters
            let labelText = q.get("labels") ?? ""
            var labels = try LabelSet(LabelSelector.parsePairs(labelText, allowOperators: false).map { ($0.0, $0.2) })
            let service = q.get("service") ?? labels["service.name"] ?? labels["service_name"] ?? ""
            labels = labels.removing(["service.name", "service_name"])
            guard let windowID = q.get("window_id"), !windowID.isEmpty, windowID.utf8.count <= 256 else {
                throw StoreError.badRequest("window_id is missing (or longer than 256 bytes): give each window a unique id so a retried upload is stored once")
            }
            let now = TimeRange.now()
            let start = try q.get("from").map { (t) throws(StoreError) in try TimeRange.parseInstant(t, name: "from", now: now) }
            let end = try q.get("until").map { (t) throws(StoreError) in try TimeRange.parseInstant(t, name: "until", now: now) }
            let body = try await readBody(request)
            let window = try ProfileIngest.prepare(
                pprof: body,
                request: .init(key: "native:" + service + ":" + windowID, service: service, labels: labels, startNanos: start, endNanos: end),
                maxDecompressed: configuration.maxDecompressedBytes)
            return try await store(window, bytes: body.count)
        }
    }

    func ingestPyroscope(_ request: Request) async throws -> Response {
        try await rejecting {
            let q = request.uri.queryParameters
            guard let name = q.get("name"), !name.isEmpty else {
                throw StoreError.badRequest("the name parameter is missing: use /ingest?name=APP{key=value}&from=…&until=…&format=pprof")
            }
            let (service, labels) = try PyroscopeIngest.parseName(name)
            let start = try PyroscopeIngest.parseTime(q.get("from"), name: "from")
            let end = try PyroscopeIngest.parseTime(q.get("until"), name: "until")
            var body = try await readBody(request)
            if let boundary = Multipart.boundary(contentType: request.headers[.contentType] ?? "") {
                body = try Multipart.part(named: "profile", in: body, boundary: boundary)
            }
            let format = q.get("format") ?? "folded"
            let key = "pyroscope:" + TraceIDs.hex(SHA256.hash(Array((name + "\n" + (q.get("from") ?? "") + "\n" + (q.get("until") ?? "") + "\n").utf8) + body))
            let ingestRequest = ProfileIngest.Request(key: key, service: service, labels: labels, startNanos: start, endNanos: end)
            let window: PreparedWindow
            switch format {
            case "pprof":
                window = try ProfileIngest.prepare(pprof: body, request: ingestRequest, maxDecompressed: configuration.maxDecompressedBytes)
            case "folded", "lines":
                guard let start, let end else { throw StoreError.badRequest("folded uploads need from and until (Unix seconds)") }
                let rate = q.get("sampleRate").flatMap { Int64($0) } ?? 100
                var raw = body
                if Gzip.isGzip(raw) {
                    do { raw = try Gzip.decompress(raw, maxOutput: configuration.maxDecompressedBytes) } catch {
                        throw StoreError.badRequest("the body is not valid gzip: \(error)")
                    }
                }
                let profile = try PyroscopeIngest.profile(folded: raw, sampleRate: rate, start: start, end: end)
                window = try ProfileIngest.prepare(profile: profile, request: ingestRequest)
            default:
                throw StoreError.badRequest("format \(JSONText.quoted(format)) is not supported: send format=pprof (or folded)")
            }
            return try await store(window, bytes: body.count)
        }
    }

    func ingestTraces(_ request: Request) async throws -> Response {
        let contentType = (request.headers[.contentType] ?? "application/x-protobuf").lowercased()
        let isJSON = contentType.hasPrefix("application/json")
        let isProtobuf = contentType.hasPrefix("application/x-protobuf") || contentType.hasPrefix("application/protobuf")
        do {
            var body = try await readBody(request)
            if (request.headers[.contentEncoding] ?? "").lowercased() == "gzip" {
                do { body = try Gzip.decompress(body, maxOutput: configuration.maxDecompressedBytes) } catch {
                    throw StoreError.badRequest("the body is not valid gzip: \(error)")
                }
            }
            guard isJSON || isProtobuf else {
                throw StoreError(.unsupportedMediaType, "unsupported Content-Type \(JSONText.quoted(contentType)): OTLP/HTTP uses application/x-protobuf or application/json")
            }
            let spans = isJSON ? try OTLPTraces.decodeJSON(body) : try OTLPTraces.decodeProtobuf(body)
            try await storage.insert(spans: spans)
            metrics.spansIngested(spans.count)
            if isJSON { return JSONResponse.make(.object([])) }
            var headers = HTTPFields()
            headers[.contentType] = "application/x-protobuf"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer()))
        } catch let error as StoreError where isProtobuf && error.status.code < 500 {
            // OTLP/HTTP answers protobuf requests with a google.rpc.Status message.
            var status = ProtobufFieldWriter()
            status.uint(1, 3)                 // code: INVALID_ARGUMENT
            status.string(2, error.message)   // message
            var headers = HTTPFields()
            headers[.contentType] = "application/x-protobuf"
            headers[.init("X-Flare-Error")!] = String(error.message.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? Character($0) : "?" }.prefix(500))
            return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: status.bytes)))
        }
    }

    // MARK: Query parameters

    func selection(_ q: Parameters, prefix: String = "", defaultService: String? = nil) throws -> Selection {
        func get(_ name: String) -> String? { q.get(prefix + name) ?? (prefix.isEmpty ? nil : q.get(name)) }
        let service = get("service").flatMap { $0.isEmpty ? nil : $0 } ?? defaultService
        let selector = try LabelSelector(parsing: get("labels") ?? "")
        var spanIDs: [String]?
        let spanParams = q.getAll(prefix + "span_id").flatMap { $0.split(separator: ",").map(String.init) }
        if !spanParams.isEmpty {
            guard spanParams.count <= 1000 else { throw StoreError.badRequest("too many span ids: at most 1000") }
            spanIDs = try spanParams.map { (s) throws(StoreError) in try TraceIDs.spanID(s) }
        }
        let traceID = try get("trace_id").map { (t) throws(StoreError) in try TraceIDs.traceID(t) }
        let from = get("from")
        let until = get("until")
        var range: TimeRange? = try TimeRange.parse(from: from, until: until)
        if (spanIDs != nil || traceID != nil) && from == nil && until == nil { range = nil }
        guard service != nil || spanIDs != nil || traceID != nil else {
            throw StoreError.badRequest("the service parameter is missing: GET /api/v1/services lists the services")
        }
        return Selection(service: service, selector: selector, range: range, spanIDs: spanIDs, traceID: traceID)
    }

    func valueKind(_ q: Parameters) throws -> ValueKind {
        let text = q.get("value") ?? "samples"
        guard let kind = ValueKind(rawValue: text) else { throw StoreError.badRequest("invalid value \(JSONText.quoted(text)): use samples or cpu") }
        return kind
    }

    func intParameter(_ q: Parameters, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = q.get(name) else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw StoreError.badRequest("invalid \(name) \(JSONText.quoted(text)): use an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    // MARK: Queries

    func services() async throws -> Response {
        let list = try await storage.services()
        return JSONResponse.make(.object([("services", .array(list.map { s in
            .object([("name", .string(s.name)), ("windows", .int(s.windows)), ("spans", .int(s.spans)),
                     ("first_ns", .int(s.firstNanos)), ("last_ns", .int(s.lastNanos))])
        }))]))
    }

    func requireService(_ q: Parameters) throws -> String {
        guard let service = q.get("service"), !service.isEmpty else {
            throw StoreError.badRequest("the service parameter is missing: GET /api/v1/services lists the services")
        }
        return service
    }

    func knownSeries(_ service: String) async throws -> [SeriesRecord] {
        let series = try await storage.series(service: service)
        guard !series.isEmpty else {
            throw StoreError.notFound("unknown service \(JSONText.quoted(service)): no profiles were stored for it; GET /api/v1/services lists the services")
        }
        return series
    }

    func labelNames(_ request: Request) async throws -> Response {
        let series = try await knownSeries(try requireService(request.uri.queryParameters))
        let names = Set(series.flatMap { $0.labels.labels.map(\.name) }).sorted()
        return JSONResponse.make(.object([("names", .array(names.map { .string($0) }))]))
    }

    func labelValues(_ request: Request, name: String) async throws -> Response {
        try LabelSet.validateName(name)
        let series = try await knownSeries(try requireService(request.uri.queryParameters))
        let values = Set(series.compactMap { $0.labels[name] }).sorted()
        return JSONResponse.make(.object([("name", .string(name)), ("values", .array(values.map { .string($0) }))]))
    }

    func totals(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        let selection = try selection(q)
        guard let service = selection.service, let range = selection.range else {
            throw StoreError.badRequest("totals need a service and a time range")
        }
        let series = try await knownSeries(service).filter { selection.selector.matches($0.labels) }.map(\.id)
        var step: Int64
        if let text = q.get("step") { step = try TimeRange.parseDuration(text) } else {
            step = max(10 * TimeRange.nanosPerSecond, (range.until - range.from) / 200)
        }
        step = max(step, TimeRange.nanosPerSecond)
        let buckets = Int((range.until - range.from + step - 1) / step)
        guard buckets <= 10_000 else { throw StoreError.badRequest("the step is too small for this range: at most 10000 points; raise step") }
        var points = Array(repeating: StackValue.zero, count: buckets)
        for window in try await storage.windowTotals(series: series, range: range) {
            let index = Int(max(0, min(Int64(buckets - 1), (window.startNanos - range.from) / step)))
            points[index].add(window.value)
        }
        return JSONResponse.make(.object([
            ("service", .string(service)), ("from_ns", .int(range.from)), ("until_ns", .int(range.until)), ("step_ns", .int(step)),
            ("points", .array(points.enumerated().map { i, v in .array([.int(range.from + Int64(i) * step), .int(v.samples), .int(v.cpuNanos)]) })),
        ]))
    }

    func flameGraph(_ request: Request) async throws -> Response {
        JSONResponse.make(text: try await flameGraphJSON(request.uri.queryParameters))
    }

    func flameGraphJSON(_ q: Parameters) async throws -> String {
        let selection = try selection(q)
        let kind = try valueKind(q)
        let maxNodes = try intParameter(q, "max_nodes", default: 2048, range: 1...200_000)
        let graph = try await engine.flameGraph(selection, value: kind, maxNodes: maxNodes)
        var out = "{"
        out += "\"unit\":" + JSONText.quoted(kind.unit)
        out += ",\"total\":" + String(kind.pick(graph.total))
        out += ",\"samples\":" + String(graph.total.samples) + ",\"cpu_ns\":" + String(graph.total.cpuNanos)
        out += ",\"windows\":" + String(graph.windows)
        out += ",\"nodes_total\":" + String(graph.tree.nodes.count) + ",\"nodes_kept\":" + String(graph.kept.count)
        FlameGraphJSON.writeTree(graph.tree, kept: graph.kept, names: graph.names, columns: FlameGraphJSON.Column.single, into: &out)
        out += "}"
        return out
    }

    func top(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        let selection = try selection(q)
        let kind = try valueKind(q)
        let limit = try intParameter(q, "limit", default: 50, range: 1...100_000)
        let by = q.get("by") ?? "self"
        guard by == "self" || by == "total" else { throw StoreError.badRequest("invalid by \(JSONText.quoted(by)): use self or total") }
        let merged = try await engine.merge(selection)
        var rows = try await engine.topFunctions(merged)
        rows.sort {
            let a = kind.pick(by == "self" ? $0.selfValue : $0.totalValue), b = kind.pick(by == "self" ? $1.selfValue : $1.totalValue)
            return a != b ? a > b : ($0.function.name, $0.function.file) < ($1.function.name, $1.function.file)
        }
        let total = kind.pick(merged.total)
        return JSONResponse.make(.object([
            ("unit", .string(kind.unit)), ("total", .int(total)), ("windows", .int(Int64(merged.windows))),
            ("functions", .array(rows.prefix(limit).map { row in
                .object([("name", .string(row.function.name)), ("file", .string(row.function.file)), ("line", .int(row.function.line)),
                         ("self", .int(kind.pick(row.selfValue))), ("total", .int(kind.pick(row.totalValue))),
                         ("self_samples", .int(row.selfValue.samples)), ("total_samples", .int(row.totalValue.samples)),
                         ("self_cpu_ns", .int(row.selfValue.cpuNanos)), ("total_cpu_ns", .int(row.totalValue.cpuNanos))])
            })),
        ]))
    }

    func pprof(_ request: Request) async throws -> Response {
        let selection = try selection(request.uri.queryParameters)
        let merged = try await engine.merge(selection)
        let profile = try await engine.pprof(merged)
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        let name = (selection.service ?? "trace").unicodeScalars.map { ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") && $0.isASCII ? Character($0) : "_" }
        headers[.contentDisposition] = "attachment; filename=\"\(String(name)).pb.gz\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: profile.gzippedPprof())))
    }

    func diff(_ request: Request) async throws -> Response {
        JSONResponse.make(text: try await diffJSON(request.uri.queryParameters))
    }

    func diffJSON(_ q: Parameters) async throws -> String {
        let a = try selection(q, prefix: "a_")
        let b = try selection(q, prefix: "b_")
        let kind = try valueKind(q)
        let mode = q.get("mode") ?? "normalized"
        guard mode == "normalized" || mode == "absolute" else { throw StoreError.badRequest("invalid mode \(JSONText.quoted(mode)): use normalized or absolute") }
        let maxNodes = try intParameter(q, "max_nodes", default: 2048, range: 1...200_000)
        let limit = try intParameter(q, "limit", default: 50, range: 1...100_000)
        let diff = try await engine.diff(a, b, value: kind, normalized: mode == "normalized", maxNodes: maxNodes, limit: limit)
        return DiffDocument.json(diff.stacks, names: diff.names, kept: diff.kept, unit: kind.unit, mode: mode,
                                 totalA: diff.totalA, totalB: diff.totalB, limit: limit)
    }

    func versions(_ request: Request) async throws -> Response {
        let service = try requireService(request.uri.queryParameters)
        let versions = try await engine.versions(service: service)
        return JSONResponse.make(.object([
            ("service", .string(service)),
            ("versions", .array(versions.map { v in
                .object([("version", .string(v.version)), ("first_ns", .int(v.firstNanos)), ("last_ns", .int(v.lastNanos)), ("windows", .int(v.windows))])
            })),
        ]))
    }

    func trace(_ id: String) async throws -> Response {
        let traceID = try TraceIDs.traceID(id)
        let trace = try await engine.trace(traceID)
        func value(_ v: StackValue) -> [(String, JSON)] { [("samples", .int(v.samples)), ("cpu_ns", .int(v.cpuNanos))] }
        return JSONResponse.make(.object([
            ("trace_id", .string(traceID)),
            ("spans", .array(trace.spans.map { s in
                .object([
                    ("span_id", .string(s.span.spanID)), ("parent_span_id", .string(s.span.parentSpanID)),
                    ("name", .string(s.span.name)), ("service", .string(s.span.service)), ("kind", .int(s.span.kind)),
                    ("start_ns", .int(s.span.startNanos)), ("end_ns", .int(s.span.endNanos)),
                    ("duration_ns", .int(s.span.endNanos - s.span.startNanos)), ("depth", .int(Int64(s.depth))),
                    ("status_code", .int(s.span.statusCode)), ("status_message", .string(s.span.statusMessage)),
                    ("attributes", .raw(s.span.attributesJSON)),
                    ("self", .object(value(s.selfValue))), ("with_descendants", .object(value(s.totalValue))),
                ])
            })),
            ("unknown_spans", .array(trace.unknownSpans.map { .object([("span_id", .string($0.spanID))] + value($0.value)) })),
        ]))
    }

    // MARK: Viewer

    /// Served with a policy that lets only the viewer's own files run and
    /// talk to this store, so a name that ever became markup could do nothing.
    static let viewerPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    func viewerFile(_ name: String) throws -> Response {
        guard let viewer = configuration.viewer else {
            throw StoreError.notFound("this store was started without the viewer (see docs/viewer.md); its API is under /api/v1")
        }
        var headers = HTTPFields()
        headers[.contentSecurityPolicy] = Self.viewerPolicy
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        headers[.cacheControl] = "no-cache"
        if name == "config.json" {
            headers[.contentType] = "application/json; charset=utf-8"
            let config = JSON.object([
                ("trace_url_template", configuration.traceURLTemplate.map { .string($0) } ?? .null),
                ("query_token_required", .bool(!(configuration.queryToken ?? "").isEmpty)),
            ])
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: config.text)))
        }
        guard let file = viewer.file(named: name) else {
            throw StoreError.notFound("no viewer file \(JSONText.quoted(name))")
        }
        headers[.contentType] = file.contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }

    /// The viewer with one flame graph (`kind=flamegraph`, the default, with
    /// the flame-graph parameters) or diff (`kind=diff`, the diff parameters)
    /// inlined, as a download.
    func export(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        guard let viewer = configuration.viewer else {
            throw StoreError.notFound("this store was started without the viewer, so it cannot export one")
        }
        let kind = q.get("kind") ?? "flamegraph"
        let document: String
        switch kind {
        case "flamegraph": document = try await flameGraphJSON(q)
        case "diff": document = try await diffJSON(q)
        default: throw StoreError.badRequest("invalid kind \(JSONText.quoted(kind)): use flamegraph or diff")
        }
        let title = q.get("title") ?? ("Flare: " + (q.get("service") ?? q.get("a_service") ?? "profile"))
        let html: String
        do { html = try HTMLExport.render(documentJSON: document, title: title, assets: viewer) } catch {
            throw StoreError(.internalServerError, "\(error)")
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        let safe = (q.get("service") ?? "profile").unicodeScalars.map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") ? Character($0) : "_" }
        headers[.contentDisposition] = "attachment; filename=\"flare-\(String(safe)).html\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func recentTraces(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        let service = q.get("service").flatMap { $0.isEmpty ? nil : $0 }
        let range = try TimeRange.parse(from: q.get("from"), until: q.get("until"))
        let limit = try intParameter(q, "limit", default: 50, range: 1...1000)
        let traces = try await engine.recentTraces(service: service, range: range, limit: limit)
        return JSONResponse.make(.object([
            ("service", service.map { .string($0) } ?? .null), ("from_ns", .int(range.from)), ("until_ns", .int(range.until)),
            ("traces", .array(traces.map { t in
                .object([("trace_id", .string(t.traceID)), ("root_name", .string(t.rootName)), ("root_service", .string(t.rootService)),
                         ("start_ns", .int(t.startNanos)), ("duration_ns", .int(t.durationNanos)), ("spans", .int(Int64(t.spanCount))),
                         ("samples", .int(t.value.samples)), ("cpu_ns", .int(t.value.cpuNanos))])
            })),
        ]))
    }

    func functionSpans(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        guard let function = q.get("function"), !function.isEmpty else {
            throw StoreError.badRequest("the function parameter is missing: give the function name as shown in the flame graph")
        }
        _ = try requireService(q)
        let selection = try selection(q)
        let kind = try valueKind(q)
        let limit = try intParameter(q, "limit", default: 20, range: 1...10_000)
        let (spans, traces) = try await engine.spansSpending(in: function, selection: selection, value: kind, limit: limit)
        return JSONResponse.make(.object([
            ("function", .string(function)), ("unit", .string(kind.unit)),
            ("spans", .array(spans.map { s in
                var members: [(String, JSON)] = [("span_id", .string(s.spanID)), ("trace_id", .string(s.traceID)),
                                                 ("self", .int(kind.pick(s.selfValue))), ("total", .int(kind.pick(s.totalValue)))]
                if let span = s.span {
                    members += [("name", .string(span.name)), ("service", .string(span.service)),
                                ("start_ns", .int(span.startNanos)), ("duration_ns", .int(span.endNanos - span.startNanos))]
                }
                return .object(members)
            })),
            ("traces", .array(traces.map { t in
                .object([("trace_id", .string(t.traceID)), ("self", .int(kind.pick(t.selfValue))), ("total", .int(kind.pick(t.totalValue)))])
            })),
        ]))
    }
}
