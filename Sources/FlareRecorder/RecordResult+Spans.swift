import FlareContextReader
import FlareProfile
import FlareSpanReader

extension RecordResult {
    /// CPU per span name (the local root span's name), from the profile's
    /// `span_name` labels; samples without a span are one row of their own.
    public func spanTable(top: Int = 15) -> [String] {
        let keyIndex = profile.stringTable.firstIndex(of: "span_name").map(Int64.init)
        let traceIndex = profile.stringTable.firstIndex(of: "trace_id").map(Int64.init)
        var cpu: [String: (samples: Int64, nanos: Int64, traces: Set<Int64>)] = [:]
        var total: Int64 = 0
        for sample in profile.samples {
            let name = sample.labels.first { $0.key == keyIndex }.map { profile.string($0.str) } ?? Self.noSpanRow
            let trace = sample.labels.first { $0.key == traceIndex }?.str
            var row = cpu[name, default: (0, 0, [])]
            row.samples += sample.values.first ?? 0
            row.nanos += sample.values.count > 1 ? sample.values[1] : 0
            if let trace { row.traces.insert(trace) }
            cpu[name] = row
            total += sample.values.first ?? 0
        }
        var lines = ["CPU by span (local root span name):", "   cpu%    samples   cpu time  traces  span"]
        let rows = cpu.sorted { ($0.value.samples, $1.key) > ($1.value.samples, $0.key) }
        for (name, row) in rows.prefix(top) {
            let percent = total > 0 ? Double(row.samples) * 100 / Double(total) : 0
            lines.append(TextFormat.padLeft(TextFormat.fixed(percent, 2) + "%", 8) + TextFormat.padLeft(String(row.samples), 11)
                + TextFormat.padLeft(TextFormat.fixed(Double(row.nanos) / 1e9, 3) + " s", 11)
                + TextFormat.padLeft(row.traces.isEmpty ? "-" : String(row.traces.count), 8) + "  " + TerminalText.safe(name))
        }
        if rows.count > top { lines.append("  … and \(rows.count - top) more") }
        return lines
    }

    static let noSpanRow = "(no span)"

    /// The span reader's report: labelled share, reasons for no label, read delay, skipped processes.
    func spanReport() -> [String] {
        guard let stats = spanStatistics, stats.processesWithSlots > 0 || !stats.skippedProcesses.isEmpty else { return [] }
        var lines: [String] = []
        let publishing = stats.samplesOfPublishingThreads
        let percent = publishing > 0 ? Double(stats.labelled) * 100 / Double(publishing) : 0
        lines.append("Span labels: \(stats.labelled) of \(publishing) samples of publishing threads labelled "
            + "(\(TextFormat.fixed(percent, 1))%), \(stats.processesWithSlots) publishing "
            + (stats.processesWithSlots == 1 ? "process." : "processes."))
        let none = stats.noSpan.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
        if !none.isEmpty {
            lines.append("  no span: " + none.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", "))
        }
        let unknown = stats.unknown.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
        if !unknown.isEmpty {
            lines.append("  unknown (not labelled): " + unknown.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", "))
        }
        if stats.delay.count > 0 {
            lines.append("  read delay after the sample: median ≤ \(Self.millis(stats.delay.quantile(0.5))), "
                + "p99 ≤ \(Self.millis(stats.delay.quantile(0.99))), max \(Self.millis(stats.delay.maximum))")
        }
        for (pid, reason) in stats.skippedProcesses.sorted(by: { $0.key < $1.key }).prefix(10) {
            lines.append("warning: pid \(pid) skipped: invalid context mapping: \(TerminalText.safe(reason))")
        }
        if stats.skippedProcesses.count > 10 { lines.append("warning: … and \(stats.skippedProcesses.count - 10) more processes skipped") }
        return lines
    }

    static func millis(_ nanos: UInt64) -> String { TextFormat.fixed(Double(nanos) / 1e6, 2) + " ms" }
}
