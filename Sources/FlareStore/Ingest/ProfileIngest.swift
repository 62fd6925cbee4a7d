import FlareFlameGraph
import FlareProfile

/// Turns an uploaded pprof body into a `PreparedWindow`: decompresses within
/// the limit, validates, reads the CPU values, keeps span and trace ids per
/// sample, and deduplicates functions and stacks within the window.
public enum ProfileIngest {
    /// Deeper stacks keep their leaf-most frames.
    public static let maxStackDepth = 1024
    /// Longer names are cut (with "…") so a hostile name cannot bloat the index.
    public static let maxFunctionNameBytes = 1024
    public static let maxFileNameBytes = 512

    public struct Request: Sendable {
        public var key: String
        public var service: String
        public var labels: LabelSet
        /// Unix nanoseconds; nil takes the profile's own time_nanos / duration_nanos.
        public var startNanos: Int64?
        public var endNanos: Int64?
        public init(key: String, service: String, labels: LabelSet, startNanos: Int64?, endNanos: Int64?) {
            self.key = key; self.service = service; self.labels = labels; self.startNanos = startNanos; self.endNanos = endNanos
        }
    }

    public static func prepare(pprof body: [UInt8], request: Request, maxDecompressed: Int) throws(StoreError) -> PreparedWindow {
        guard !body.isEmpty else { throw .badRequest("the request body is empty: send a gzip-compressed pprof profile") }
        let profile: Profile
        do {
            profile = try Profile(pprofFile: body, maxDecompressed: maxDecompressed)
        } catch let error as ProfileDecodingError {
            throw .badRequest("the body is not a valid pprof profile: \(error.description)")
        } catch {
            throw .badRequest("the body is not a valid pprof profile: \(error)")
        }
        return try prepare(profile: profile, request: request)
    }

    public static func prepare(profile: Profile, request: Request) throws(StoreError) -> PreparedWindow {
        try validateService(request.service)
        let samplesIndex = profile.valueIndex(type: "samples", unit: "count")
        let cpuIndex = profile.valueIndex(type: "cpu", unit: "nanoseconds")
        guard samplesIndex != nil || cpuIndex != nil else {
            let types = profile.sampleTypes.map { profile.string($0.type) + "/" + profile.string($0.unit) }.joined(separator: ", ")
            throw .badRequest("unsupported profile type (sample types: \(types.isEmpty ? "none" : types)): Flare stores CPU profiles with samples/count or cpu/nanoseconds")
        }
        var period: Int64 = 0
        if let pt = profile.periodType, profile.string(pt.type) == "cpu", profile.string(pt.unit) == "nanoseconds", profile.period > 0 {
            period = profile.period
        }

        // Time range.
        var start = request.startNanos ?? profile.timeNanos
        var end = request.endNanos ?? (profile.durationNanos > 0 ? profile.timeNanos &+ profile.durationNanos : profile.timeNanos)
        guard start > 0 || end > 0 else {
            throw .badRequest("the window has no time range: send from and until, or a profile with time_nanos and duration_nanos")
        }
        guard start >= 0, end >= 0 else { throw .badRequest("the window's time range is negative") }
        guard end >= start else { throw .badRequest("the window's time range is inverted: until (\(end) ns) is before from (\(start) ns)") }
        guard end - start <= TimeRange.maxWindowNanos else {
            throw .badRequest("the window spans \((end - start) / TimeRange.nanosPerSecond) s: at most 24 h per profile; split longer recordings")
        }
        if end == start { end = start + 1 }
        start = max(0, start)

        var functionIndex: [FunctionName: Int32] = [:]
        var functions: [FunctionName] = []
        var stackIndex: [[Int32]: Int32] = [:]
        var stacks: [[Int32]] = []
        var values: [StackValue] = []
        var spanIndex: [SpanKey: Int] = [:]
        var spanValues: [PreparedWindow.SpanValue] = []
        var total = StackValue.zero

        let spanKey = profile.stringTable.firstIndex(of: "span_id").map(Int64.init)
        let traceKey = profile.stringTable.firstIndex(of: "trace_id").map(Int64.init)

        var failure: StoreError?
        profile.forEachSampleFrames { sample, frames in
            guard failure == nil else { return }
            for v in sample.values where v < 0 {
                failure = .badRequest("a sample has a negative value (\(v)): values must be counts and durations")
                return
            }
            var value = StackValue.zero
            if let i = samplesIndex { value.samples = sample.values[i] }
            if let i = cpuIndex { value.cpuNanos = sample.values[i] }
            if samplesIndex == nil { value.samples = period > 0 ? value.cpuNanos / period : (value.cpuNanos > 0 ? 1 : 0) }
            if cpuIndex == nil {
                let (product, overflow) = value.samples.multipliedReportingOverflow(by: period)
                guard !overflow else { failure = .badRequest("a sample's value overflows 64 bits when multiplied by the period"); return }
                value.cpuNanos = product
            }
            guard value.samples > 0 || value.cpuNanos > 0 else { return }
            let (s, o1) = total.samples.addingReportingOverflow(value.samples)
            let (c, o2) = total.cpuNanos.addingReportingOverflow(value.cpuNanos)
            guard !o1, !o2 else { failure = .badRequest("the profile's values overflow 64 bits when summed"); return }
            total = StackValue(samples: s, cpuNanos: c)

            var ids: [Int32] = []
            ids.reserveCapacity(min(frames.count, maxStackDepth))
            for frame in frames.prefix(maxStackDepth) {
                let name = FunctionName(name: truncate(frame.function, maxFunctionNameBytes), file: truncate(frame.file, maxFileNameBytes),
                                        line: max(0, frame.startLine))
                if let id = functionIndex[name] { ids.append(id); continue }
                let id = Int32(functions.count)
                functions.append(name)
                functionIndex[name] = id
                ids.append(id)
            }
            let stack: Int32
            if let existing = stackIndex[ids] {
                stack = existing
                values[Int(stack)].add(value)
            } else {
                stack = Int32(stacks.count)
                stacks.append(ids)
                values.append(value)
                stackIndex[ids] = stack
            }

            var spanID = ""
            var traceID = ""
            for label in sample.labels {
                if label.key == spanKey, label.str != 0 {
                    guard let id = TraceIDs.normalizedHex(profile.string(label.str), digits: 16) else {
                        failure = .badRequest("sample label span_id \(JSONText.quoted(profile.string(label.str))) is not 16 hex digits")
                        return
                    }
                    spanID = id
                } else if label.key == traceKey, label.str != 0 {
                    guard let id = TraceIDs.normalizedHex(profile.string(label.str), digits: 32) else {
                        failure = .badRequest("sample label trace_id \(JSONText.quoted(profile.string(label.str))) is not 32 hex digits")
                        return
                    }
                    traceID = id
                }
            }
            if !spanID.isEmpty || !traceID.isEmpty {
                let key = SpanKey(stack: stack, spanID: spanID, traceID: traceID)
                if let i = spanIndex[key] {
                    spanValues[i].value.add(value)
                } else {
                    spanIndex[key] = spanValues.count
                    spanValues.append(.init(stack: stack, spanID: spanID, traceID: traceID, value: value))
                }
            }
        }
        if let failure { throw failure }

        var labels = request.labels
        if labels[versionLabel] == nil, let version = processVersion(profile),
           let withVersion = try? LabelSet(labels.labels.map { ($0.name, $0.value) } + [(versionLabel, version)]) {
            labels = withVersion
        }
        var window = PreparedWindow(key: request.key, service: request.service, labels: labels,
                                    startNanos: start, endNanos: end, functions: functions, stacks: stacks,
                                    values: values, spanValues: spanValues, total: total)
        let unnamed = unnamedFunctions(profile)
        window.unnamedFunctions = functions.enumerated().compactMap { index, function in
            guard function.file.isEmpty, let (buildID, offset) = unnamed[function.name] else { return nil }
            return .init(function: Int32(index), buildID: buildID, fileOffset: offset)
        }
        return window
    }

    /// The functions named `file+0xOFFSET` (how Flare names code it could
    /// not symbolize) in a mapping with a build-id: name → (build-id, offset).
    static func unnamedFunctions(_ profile: Profile) -> [String: (String, UInt64)] {
        var buildIDs: [UInt64: (prefix: String, buildID: String)] = [:]
        for mapping in profile.mappings {
            let buildID = profile.string(mapping.buildID).lowercased()
            guard (2...128).contains(buildID.count), buildID.allSatisfy(\.isHexDigit) else { continue }
            let file = profile.string(mapping.filename).split(separator: "/").last.map(String.init) ?? ""
            buildIDs[mapping.id] = (file.replacingOccurrences(of: " (deleted)", with: "") + "+0x", buildID)
        }
        guard !buildIDs.isEmpty else { return [:] }
        let names = Dictionary(profile.functions.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        var found: [String: (String, UInt64)] = [:]
        for location in profile.locations {
            guard let (prefix, buildID) = buildIDs[location.mappingID] else { continue }
            for line in location.lines {
                guard let nameIndex = names[line.functionID] else { continue }
                let name = profile.string(nameIndex)
                guard name.hasPrefix(prefix), let offset = UInt64(name.dropFirst(prefix.count), radix: 16) else { continue }
                found[name] = (buildID, offset)
            }
        }
        return found
    }

    private struct SpanKey: Hashable { var stack: Int32; var spanID: String; var traceID: String }

    /// The series label that names a deploy.
    static let versionLabel = "service.version"

    /// The deploy of the profiled process, from its OTEL_CTX resource: the
    /// `service_version` sample label `flare record` and the agent write, when
    /// every labelled sample agrees on one value.
    static func processVersion(_ profile: Profile) -> String? {
        guard let key = profile.stringTable.firstIndex(of: "service_version").map(Int64.init) else { return nil }
        var found: Int64?
        for sample in profile.samples {
            for label in sample.labels where label.key == key && label.str != 0 {
                if let found, profile.string(found) != profile.string(label.str) { return nil }
                found = label.str
            }
        }
        return found.map(profile.string).flatMap { $0.isEmpty ? nil : $0 }
    }

    public static func validateService(_ service: String) throws(StoreError) {
        guard !service.isEmpty else { throw .badRequest("the service name is missing: pass service=NAME (or a service.name label)") }
        guard service.utf8.count <= 256, service.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f }) else {
            throw .badRequest("invalid service name \(JSONText.quoted(service)): at most 256 bytes, no control characters")
        }
    }

    static func truncate(_ s: String, _ maxBytes: Int) -> String {
        guard s.utf8.count > maxBytes else { return s }
        var out = ""
        var bytes = 0
        for ch in s {
            let n = ch.utf8.count
            if bytes + n > maxBytes - 3 { break }
            out.append(ch)
            bytes += n
        }
        return out + "…"
    }
}
