/// The CI gate of `flare diff`: fails when a function's share grew by more than
/// a number of percentage points, but only when the change is also too large
/// to be sampling noise.
///
/// A share p measured over N samples has a standard error of about
/// sqrt(p(1-p)/N): at 99 Hz, ten seconds of one busy CPU is ~1 000 samples and
/// a 25 % share wobbles by ±1.4 points from run to run, so a bare "5 points"
/// rule on short recordings trips on noise. Three guards together:
/// - points: the share grew by more than `maxSelfGrowth` (self) or
///   `maxTotalGrowth` (total) percentage points: the size that matters;
/// - significance: the two-proportion z-score is at least `minZ` (3: about one
///   chance in 740 per function that noise alone gets there);
/// - samples: each side has at least `minSamples` samples, otherwise the gate
///   cannot judge and says so instead of passing.
public struct DiffGate: Sendable, Equatable {
    public static let defaultMaxSelfGrowth = 5.0
    public static let defaultMinZ = 3.0
    public static let defaultMinSamples: Int64 = 1000

    public var maxSelfGrowth: Double?
    public var maxTotalGrowth: Double?
    public var minZ: Double
    public var minSamples: Int64

    public init(maxSelfGrowth: Double? = defaultMaxSelfGrowth, maxTotalGrowth: Double? = nil,
                minZ: Double = defaultMinZ, minSamples: Int64 = defaultMinSamples) {
        self.maxSelfGrowth = maxSelfGrowth; self.maxTotalGrowth = maxTotalGrowth; self.minZ = minZ; self.minSamples = minSamples
    }

    public enum Metric: String, Sendable { case selfShare = "self", totalShare = "total" }

    /// A function whose share grew past a threshold.
    public struct Finding: Sendable {
        public var row: DiffReport.Row
        public var metric: Metric
        public var points: Double { metric == .selfShare ? row.selfPoints : row.totalPoints }
        public var z: Double { metric == .selfShare ? row.selfZ : row.totalZ }
        public var shareBase: Double { metric == .selfShare ? row.selfShareBase : row.totalShareBase }
        public var shareTarget: Double { metric == .selfShare ? row.selfShareTarget : row.totalShareTarget }
    }

    public struct Verdict: Sendable {
        /// Grew past the points threshold and is significant: these fail the gate.
        public var violations: [Finding]
        /// Grew past the points threshold but within noise (z below `minZ`).
        public var withinNoise: [Finding]
        /// Set when a side has fewer than `minSamples` samples: no verdict.
        public var tooFewSamples: (side: String, samples: Int64)?
        public var passed: Bool { violations.isEmpty && tooFewSamples == nil }
    }

    public func evaluate(_ report: DiffReport) -> Verdict {
        var verdict = Verdict(violations: [], withinNoise: [], tooFewSamples: nil)
        if report.base.samples < minSamples {
            verdict.tooFewSamples = ("base", report.base.samples)
            return verdict
        }
        if report.target.samples < minSamples {
            verdict.tooFewSamples = ("target", report.target.samples)
            return verdict
        }
        for row in report.rows {
            let limits: [(Metric, Double?)] = [(.selfShare, maxSelfGrowth), (.totalShare, maxTotalGrowth)]
            for (metric, limit) in limits {
                guard let limit else { continue }
                let finding = Finding(row: row, metric: metric)
                guard finding.points > limit else { continue }
                if finding.z >= minZ { verdict.violations.append(finding) } else { verdict.withinNoise.append(finding) }
            }
        }
        verdict.violations.sort { $0.points > $1.points }
        verdict.withinNoise.sort { $0.points > $1.points }
        return verdict
    }
}
