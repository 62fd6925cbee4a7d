import FlareProfile

extension DiffReport {
    // MARK: JSON

    /// The machine-readable report: both sides, every function with raw
    /// values, shares (percent), changes (points) and z-scores, largest change
    /// first, and the gate's verdict when a gate ran.
    public func json(gate: DiffGate?, verdict: DiffGate.Verdict?) -> String {
        func side(_ s: Side) -> JSON {
            .object([("label", .string(s.label)), ("total", Self.number(s.total)), ("samples", .int(s.samples))])
        }
        func finding(_ f: DiffGate.Finding) -> JSON {
            .object([("name", .string(f.row.function.name)), ("file", .string(f.row.function.file)), ("metric", .string(f.metric.rawValue)),
                     ("share_base", Self.number(f.shareBase)), ("share_target", Self.number(f.shareTarget)),
                     ("points", Self.number(f.points)), ("z", Self.number(f.z))])
        }
        var members: [(String, JSON)] = [("mode", .string(mode.rawValue)), ("unit", .string(unit)), ("base", side(base)), ("target", side(target))]
        if let gate, let verdict {
            members.append(("gate", .object([
                ("passed", .bool(verdict.passed)),
                ("max_self_growth_points", gate.maxSelfGrowth.map(Self.number) ?? .null),
                ("max_total_growth_points", gate.maxTotalGrowth.map(Self.number) ?? .null),
                ("min_z", Self.number(gate.minZ)), ("min_samples", .int(gate.minSamples)),
                ("too_few_samples", verdict.tooFewSamples.map { JSON.object([("side", .string($0.side)), ("samples", .int($0.samples))]) } ?? JSON.null),
                ("violations", .array(verdict.violations.map(finding))),
                ("within_noise", .array(verdict.withinNoise.map(finding))),
            ])))
        } else {
            members.append(("gate", .null))
        }
        members.append(("functions", .array(rows.map { r in
            .object([
                ("name", .string(r.function.name)), ("file", .string(r.function.file)), ("line", .int(r.function.line)),
                ("self_base", Self.number(r.values.selfBase)), ("self_target", Self.number(r.values.selfTarget)), ("self_delta", Self.number(r.selfDelta)),
                ("total_base", Self.number(r.values.totalBase)), ("total_target", Self.number(r.values.totalTarget)), ("total_delta", Self.number(r.totalDelta)),
                ("self_share_base", Self.number(r.selfShareBase)), ("self_share_target", Self.number(r.selfShareTarget)), ("self_points", Self.number(r.selfPoints)),
                ("total_share_base", Self.number(r.totalShareBase)), ("total_share_target", Self.number(r.totalShareTarget)), ("total_points", Self.number(r.totalPoints)),
                ("self_z", Self.number(r.selfZ)), ("total_z", Self.number(r.totalZ)),
            ])
        })))
        return JSON.object(members).text + "\n"
    }

    /// Integers stay integers; other values keep four decimals; infinities are null.
    static func number(_ v: Double) -> JSON {
        guard v.isFinite else { return .null }
        if v == v.rounded(), abs(v) < 9e15 { return .int(Int64(v)) }
        return .double((v * 10_000).rounded() / 10_000)
    }

    // MARK: Terminal

    /// A table of the `top` largest changes, then the gate's verdict.
    public func table(top: Int, gate: DiffGate?, verdict: DiffGate.Verdict?) -> String {
        var lines: [String] = []
        let what = mode == .normalized ? "shares of each side's own total, change in points" : "raw \(unit), change in \(unit)"
        lines.append("base:   \(TerminalText.safe(base.label, maxLength: 200)) (\(base.samples) samples)")
        lines.append("target: \(TerminalText.safe(target.label, maxLength: 200)) (\(target.samples) samples)")
        lines.append("\(rows.count) functions; largest changes first (\(what)):")
        lines.append("")
        let header = mode == .normalized
            ? "  self% base → target    change   total% base → target    change  function"
            : "  self base → target         change    total base → target         change  function"
        lines.append(header)
        for r in rows.prefix(max(0, top)) {
            let name = TerminalText.safe(r.function.name, maxLength: 120)
            if mode == .normalized {
                lines.append(TextFormat.padLeft(TextFormat.fixed(r.selfShareBase, 2), 11) + " → " + TextFormat.padLeft(TextFormat.fixed(r.selfShareTarget, 2), 6)
                    + TextFormat.padLeft(Self.signed(r.selfPoints, 2), 10)
                    + TextFormat.padLeft(TextFormat.fixed(r.totalShareBase, 2), 14) + " → " + TextFormat.padLeft(TextFormat.fixed(r.totalShareTarget, 2), 6)
                    + TextFormat.padLeft(Self.signed(r.totalPoints, 2), 10) + "  " + name)
            } else {
                lines.append(TextFormat.padLeft(TextFormat.fixed(r.values.selfBase, 0), 10) + " → " + TextFormat.padLeft(TextFormat.fixed(r.values.selfTarget, 0), 10)
                    + TextFormat.padLeft(Self.signed(r.selfDelta, 0), 15)
                    + TextFormat.padLeft(TextFormat.fixed(r.values.totalBase, 0), 14) + " → " + TextFormat.padLeft(TextFormat.fixed(r.values.totalTarget, 0), 10)
                    + TextFormat.padLeft(Self.signed(r.totalDelta, 0), 15) + "  " + name)
            }
        }
        if rows.count > top { lines.append("  … \(rows.count - top) more (--top N shows more, --json FILE writes all)") }
        var text = lines.joined(separator: "\n") + "\n"
        if let gate, let verdict { text += "\n" + Self.verdictText(gate: gate, verdict: verdict) }
        return text
    }

    /// The gate's verdict: passed, failed with the offending functions, or no
    /// verdict for lack of samples; then the growth it left out as noise.
    public static func verdictText(gate: DiffGate, verdict: DiffGate.Verdict) -> String {
        var rule: [String] = []
        if let m = gate.maxSelfGrowth { rule.append("self share +\(TextFormat.fixed(m, 1)) points") }
        if let m = gate.maxTotalGrowth { rule.append("total share +\(TextFormat.fixed(m, 1)) points") }
        let guards = "z ≥ \(TextFormat.fixed(gate.minZ, 1)), ≥ \(gate.minSamples) samples per side"
        var lines: [String] = []
        if let few = verdict.tooFewSamples {
            return "gate: NO VERDICT: the \(few.side) has \(few.samples) samples, fewer than the \(gate.minSamples) the gate needs to tell a change from noise; record longer or at a higher -F, or lower --min-samples\n"
        }
        func describe(_ f: DiffGate.Finding) -> String {
            "  " + TerminalText.safe(f.row.function.name, maxLength: 120) + ": " + f.metric.rawValue + " "
                + TextFormat.fixed(f.shareBase, 2) + "% → " + TextFormat.fixed(f.shareTarget, 2) + "% ("
                + Self.signed(f.points, 2) + " points, z = " + (f.z.isFinite ? TextFormat.fixed(f.z, 1) : "∞") + ")"
        }
        if verdict.violations.isEmpty {
            lines.append("gate: PASSED: no function grew by more than " + rule.joined(separator: " or ") + " (" + guards + ")")
        } else {
            let n = verdict.violations.count
            lines.append("gate: FAILED: \(n) function\(n == 1 ? "" : "s") grew by more than " + rule.joined(separator: " or ") + " (" + guards + "):")
            lines += verdict.violations.map(describe)
        }
        if !verdict.withinNoise.isEmpty {
            lines.append("not counted, within sampling noise (z < \(TextFormat.fixed(gate.minZ, 1))):")
            lines += verdict.withinNoise.map(describe)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func signed(_ v: Double, _ digits: Int) -> String {
        let text = TextFormat.fixed(v, digits)
        return text.hasPrefix("-") || text == TextFormat.fixed(0, digits) ? text : "+" + text
    }
}
