import FlareFlameGraph
import FlareProfile
import FlareStore
import Foundation

/// `flare diff --store URL --base SEL --target SEL`: two selections, compared
/// through the store's `/api/v1/diff` in absolute mode (raw per-function self
/// and total of both sides); shares, ranking and the gate are computed here by
/// the same code as for files.
struct StoreDiff {
    let client: StoreClient
    let base: String
    let target: String
    let mode: DiffReport.Mode

    /// One side's query parameters, from `service=S,version=V,key=value,from=T,until=T`.
    struct Selection {
        var pairs: [(key: String, value: String)]

        static let reserved: Set<String> = ["service", "version", "from", "until", "span_id", "trace_id"]

        init(parsing text: String, option: String) throws {
            pairs = []
            for part in text.split(separator: ",", omittingEmptySubsequences: true) {
                let item = part.trimmingCharacters(in: .whitespaces)
                guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                    throw InputError(description: "invalid \(option) \(TerminalText.safe(text)): use KEY=VALUE pairs separated by commas, like service=checkout,version=1.4")
                }
                let key = String(item[..<eq]).trimmingCharacters(in: .whitespaces)
                let value = String(item[item.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
                guard !pairs.contains(where: { $0.key == key }) else {
                    throw InputError(description: "invalid \(option): \(TerminalText.safe(key)) is given twice")
                }
                pairs.append((key, value))
            }
        }

        subscript(key: String) -> String? { pairs.first { $0.key == key }?.value }

        /// This selection with the keys it does not give taken from `other`.
        func inheriting(from other: Selection) -> Selection {
            var result = self
            for pair in other.pairs where self[pair.key] == nil { result.pairs.append(pair) }
            return result
        }

        var text: String { pairs.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }
    }

    func compare() throws -> DiffComparison {
        let baseSelection = try Selection(parsing: base, option: "--base")
        let targetSelection = try Selection(parsing: target, option: "--target").inheriting(from: baseSelection)
        var versions: [String: [Version]] = [:]
        let a = try parameters(baseSelection, side: "base", versions: &versions)
        let b = try parameters(targetSelection, side: "target", versions: &versions)
        let query = a.map { ("a_" + $0.0, $0.1) } + b.map { ("b_" + $0.0, $0.1) }
        let raw = try client.getJSON("/api/v1/diff", query + [("mode", "absolute"), ("value", "samples"), ("max_nodes", "1"), ("limit", "100000")])
        let totalA = (raw["total_a"] as? NSNumber)?.doubleValue ?? 0
        let totalB = (raw["total_b"] as? NSNumber)?.doubleValue ?? 0
        for (side, selection, total) in [("base", baseSelection, totalA), ("target", targetSelection, totalB)] where total <= 0 {
            throw InputError(description: "the \(side) selection \(TerminalText.safe(selection.text)) has no samples: nothing to compare; check the service, labels and time range (GET /api/v1/versions?service=… lists versions and when they were seen)")
        }
        let functions = ((raw["functions"] as? [[String: Any]]) ?? []).map { f in
            func value(_ key: String) -> Double { (f[key] as? NSNumber)?.doubleValue ?? 0 }
            return DiffReport.FunctionValues(function: FunctionName(name: f["name"] as? String ?? "?", file: f["file"] as? String ?? "",
                                                                             line: (f["line"] as? NSNumber)?.int64Value ?? 0),
                                             selfBase: value("self_a"), selfTarget: value("self_b"), totalBase: value("total_a"), totalTarget: value("total_b"))
        }
        let report = DiffReport(functions: functions,
                                base: .init(label: baseSelection.text, total: totalA, samples: Int64(totalA)),
                                target: .init(label: targetSelection.text, total: totalB, samples: Int64(totalB)),
                                unit: "samples", mode: mode)
        let client = self.client, mode = self.mode
        return DiffComparison(report: report) {
            let body = try client.get("/api/v1/diff", query + [("mode", mode.rawValue), ("value", "samples")])
            return String(decoding: body, as: UTF8.self)
        }
    }

    /// The store's parameters for one side; a version is checked against the
    /// store's list and, without from/until, spans the time it was seen.
    func parameters(_ selection: Selection, side: String, versions cache: inout [String: [Version]]) throws -> [(String, String)] {
        guard let service = selection["service"], !service.isEmpty else {
            throw InputError(description: "the \(side) selection needs a service: add service=NAME to --base")
        }
        var params: [(String, String)] = [("service", service)]
        var labels: [(String, String)] = []
        var from = selection["from"], until = selection["until"]
        if var version = selection["version"] {
            let versions = try cache[service] ?? knownVersions(service)
            cache[service] = versions
            var found = versions.first { $0.version == version }
            if found == nil, version == "latest" || version == "previous" {
                let index = versions.count - (version == "latest" ? 1 : 2)
                found = index >= 0 ? versions[index] : nil
                guard let found else {
                    throw InputError(description: "\(side): \(service) has \(versions.count) version\(versions.count == 1 ? "" : "s") in the store, so there is no \(version) one")
                }
                version = found.version
            }
            guard let match = found else {
                let list = versions.suffix(10).map { TerminalText.safe($0.version) }.joined(separator: ", ")
                throw InputError(description: "\(side): version \(TerminalText.safe(version)) of \(TerminalText.safe(service)) is not in the store; its versions are \(list.isEmpty ? "none (no series has a service.version label)" : list)")
            }
            labels.append((QueryEngine.versionLabel, version))
            if from == nil && until == nil {
                from = String(match.firstNanos)
                until = String(match.lastNanos + 1)
            }
        }
        for pair in selection.pairs where !Selection.reserved.contains(pair.key) { labels.append((pair.key, pair.value)) }
        if !labels.isEmpty {
            params.append(("labels", "{" + labels.map { "\($0.0)=" + Self.quoted($0.1) }.joined(separator: ",") + "}"))
        }
        if let from { params.append(("from", from)) }
        if let until { params.append(("until", until)) }
        if let span = selection["span_id"] { params.append(("span_id", span)) }
        if let trace = selection["trace_id"] { params.append(("trace_id", trace)) }
        return params
    }

    struct Version { var version: String; var firstNanos: Int64; var lastNanos: Int64 }

    func knownVersions(_ service: String) throws -> [Version] {
        let object = try client.getJSON("/api/v1/versions", [("service", service)])
        return ((object["versions"] as? [[String: Any]]) ?? []).compactMap { v in
            guard let version = v["version"] as? String, let first = (v["first_ns"] as? NSNumber)?.int64Value,
                  let last = (v["last_ns"] as? NSNumber)?.int64Value else { return nil }
            return Version(version: version, firstNanos: first, lastNanos: last)
        }
    }

    /// A label value in the selector syntax: double-quoted, `"` and `\` escaped.
    static func quoted(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
