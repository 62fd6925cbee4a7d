import FlareProfile

extension RecordResult {
    /// The terminal report: what was recorded and where the CPU went.
    public func summary(top: Int = 15, bySpan: Bool = false) -> String {
        let totals = FunctionTotals(profile)
        var lines: [String] = []
        let processWord = processes.count == 1 ? "process" : "processes"
        lines.append("Recorded \(samples) samples at \(frequency) Hz over \(TextFormat.fixed(durationSeconds, 2)) s "
            + "(\(stopReason)), \(lostRecords) lost, \(processes.count) \(processWord).")
        if lostRecords > 0 {
            lines.append("warning: the kernel dropped \(lostRecords) records; lower -F to keep up")
        }
        if samples == 0 {
            lines.append("No samples: the target used no CPU while it was recorded.")
            return lines.joined(separator: "\n") + "\n"
        }
        lines.append("")
        if bySpan {
            lines += spanTable(top: top)
        } else {
            lines.append("Top functions by self time:")
            lines += Self.table(totals.topBySelf(top), totals: totals)
            lines.append("")
            lines.append("Top functions by total time:")
            lines += Self.table(totals.topByTotal(top), totals: totals)
        }
        let spans = spanReport()
        if !spans.isEmpty {
            lines.append("")
            lines += spans
        }
        lines.append("")
        lines.append("Processes seen:")
        for process in processes.prefix(top) {
            lines.append("  " + TextFormat.padLeft(String(process.pid), 8) + "  "
                + TextFormat.padRight(TerminalText.safe(process.name), 24) + TextFormat.padLeft(String(process.samples), 8) + " samples")
        }
        if processes.count > top { lines.append("  … and \(processes.count - top) more") }
        if !truncatedStacks.isEmpty {
            lines.append("")
            lines.append("Incomplete stacks (they end in a marker frame):")
            for (reason, count) in truncatedStacks.sorted(by: { $0.value > $1.value }) {
                lines.append("  " + TextFormat.padLeft(String(count), 8) + "  " + reason)
            }
        }
        if !unreadableFiles.isEmpty {
            lines.append("")
            lines.append("Files without symbols (their frames show as file+offset):")
            for (path, reason) in unreadableFiles.sorted(by: { $0.key < $1.key }).prefix(top) {
                lines.append("  \(TerminalText.safe(path)): \(TerminalText.safe(reason))")
            }
        }
        if let status = commandExitStatus, status != 0 {
            lines.append("")
            lines.append("note: the command exited with status \(status)")
        }
        lines.append("")
        let perThousand = samples > 0 ? flareCPUSeconds * 1e6 / Double(samples) : 0
        lines.append("Flare used \(TextFormat.fixed(flareCPUSeconds, 3)) s of CPU (\(TextFormat.fixed(perThousand, 1)) ms per 1000 samples).")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func table(_ entries: [FunctionTotals.Entry], totals: FunctionTotals) -> [String] {
        var rows = ["    self%   total%      self     total  function"]
        for entry in entries {
            let selfPercent = TextFormat.padLeft(TextFormat.fixed(totals.percent(entry.selfValue), 2) + "%", 9)
            let totalPercent = TextFormat.padLeft(TextFormat.fixed(totals.percent(entry.totalValue), 2) + "%", 9)
            let counts = TextFormat.padLeft(String(entry.selfValue), 10) + TextFormat.padLeft(String(entry.totalValue), 10)
            rows.append(selfPercent + totalPercent + counts + "  " + TerminalText.safe(entry.function))
        }
        return rows
    }
}
