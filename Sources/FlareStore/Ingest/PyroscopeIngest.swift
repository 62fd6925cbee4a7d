import FlareFlameGraph
import FlareProfile

/// Pyroscope's ingest API, `POST /ingest?name=APP{k=v,…}&from=&until=&format=pprof`,
/// so existing Pyroscope clients can send to Flare.
public enum PyroscopeIngest {
    /// `app.cpu{env=prod,region=eu}` → service "app" and its labels.
    public static func parseName(_ name: String) throws(StoreError) -> (service: String, labels: LabelSet) {
        var app = name
        var labelText = ""
        if let brace = name.firstIndex(of: "{") {
            app = String(name[..<brace])
            labelText = String(name[brace...])
        }
        app = app.trimmingSpaces()
        if app.hasSuffix(".cpu") { app.removeLast(4) }
        guard !app.isEmpty else {
            throw .badRequest("the name parameter has no application name: use name=APP{key=value,…}")
        }
        let pairs = try LabelSelector.parsePairs(labelText, allowOperators: false)
        var labels = pairs.map { ($0.0, $0.2) }
        labels.removeAll { $0.0 == "__name__" }
        return (app, try LabelSet(labels))
    }

    /// Pyroscope's `from`/`until`: Unix seconds (milli-, micro- or nanoseconds by magnitude).
    public static func parseTime(_ text: String?, name: String) throws(StoreError) -> Int64? {
        guard let text, !text.isEmpty else { return nil }
        return try TimeRange.parseInstant(text, name: name, now: TimeRange.now())
    }

    /// Folded stacks (`a;b;c 12` per line) as a CPU profile.
    public static func profile(folded body: [UInt8], sampleRate: Int64, start: Int64, end: Int64) throws(StoreError) -> Profile {
        guard let text = String(validating: body, as: UTF8.self) else { throw .badRequest("the folded body is not valid UTF-8") }
        let period = sampleRate > 0 ? 1_000_000_000 / sampleRate : 10_000_000
        var builder = ProfileBuilder.cpuProfile(periodNanos: period, timeNanos: start, durationNanos: max(0, end - start))
        var lineNumber = 0
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            guard let space = line.lastIndex(of: " ") else {
                throw .badRequest("folded line \(lineNumber) has no count: use 'root;caller;leaf COUNT'")
            }
            guard let count = Int64(line[line.index(after: space)...]), count >= 0 else {
                throw .badRequest("folded line \(lineNumber) has an invalid count: use a non-negative integer")
            }
            let (cpu, overflow) = count.multipliedReportingOverflow(by: period)
            guard !overflow else { throw .badRequest("folded line \(lineNumber): the count overflows 64 bits") }
            let frames = line[..<space].split(separator: ";").reversed().map { name -> UInt64 in
                let function = builder.function(name: String(name))
                return builder.location(mappingID: 0, address: 0, lines: [Profile.Line(functionID: function)])
            }
            builder.addSample(locationIDs: Array(frames), values: [count, cpu], labels: [])
        }
        return builder.profile
    }
}

/// Just enough multipart/form-data to take the `profile` part of a Pyroscope upload.
public enum Multipart {
    public static func boundary(contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.trimmingSpaces()
            if pair.lowercased().hasPrefix("boundary=") {
                var value = String(pair.dropFirst("boundary=".count))
                if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }

    /// The body of the part whose Content-Disposition names `field`.
    public static func part(named field: String, in body: [UInt8], boundary: String) throws(StoreError) -> [UInt8] {
        let delimiter = Array(("--" + boundary).utf8)
        var positions: [Int] = []
        var i = 0
        while let found = find(delimiter, in: body, from: i) {
            positions.append(found)
            i = found + delimiter.count
        }
        guard positions.count >= 2 else { throw .badRequest("malformed multipart body: boundary \(JSONText.quoted(boundary)) not found") }
        for (start, end) in zip(positions, positions.dropFirst()) {
            var partStart = start + delimiter.count
            if body[partStart...].starts(with: [13, 10]) { partStart += 2 }
            guard let headerEnd = find([13, 10, 13, 10], in: body, from: partStart), headerEnd < end else { continue }
            let headers = String(decoding: body[partStart..<headerEnd], as: UTF8.self).lowercased()
            guard headers.contains("name=\"\(field)\"") else { continue }
            var contentEnd = end
            if contentEnd >= 2, body[contentEnd - 2] == 13, body[contentEnd - 1] == 10 { contentEnd -= 2 }
            return Array(body[(headerEnd + 4)..<max(headerEnd + 4, contentEnd)])
        }
        throw .badRequest("the multipart body has no \(JSONText.quoted(field)) part")
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        var i = from
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
