/// Two profiles (or store selections) compared function by function: each
/// function's self and total as a share of its own side's total, the change in
/// percentage points, and how far that change stands out from sampling noise.
/// `flare diff` builds it the same way for files and for store selections.
public struct DiffReport: Sendable {
    public enum Mode: String, Sendable {
        /// Shares of each side's own total are compared (the default).
        case normalized
        /// Raw values are compared: the ranking and the table show counts.
        case absolute
    }

    /// One side of the comparison.
    public struct Side: Sendable {
        /// What the side is (a file path or a selection), as the user gave it.
        public var label: String
        /// The side's total in `unit`.
        public var total: Double
        /// The samples the total rests on: the N of the significance test.
        public var samples: Int64
        public init(label: String, total: Double, samples: Int64) { self.label = label; self.total = total; self.samples = samples }
    }

    /// A function's raw values on both sides, in `unit`.
    public struct FunctionValues: Sendable {
        public var function: FunctionName
        public var selfBase: Double
        public var selfTarget: Double
        public var totalBase: Double
        public var totalTarget: Double
        public init(function: FunctionName, selfBase: Double, selfTarget: Double, totalBase: Double, totalTarget: Double) {
            self.function = function; self.selfBase = selfBase; self.selfTarget = selfTarget
            self.totalBase = totalBase; self.totalTarget = totalTarget
        }
    }

    /// A function's values, shares (percent of its side's total) and changes.
    public struct Row: Sendable {
        public var values: FunctionValues
        public var selfShareBase: Double
        public var selfShareTarget: Double
        public var totalShareBase: Double
        public var totalShareTarget: Double
        /// Two-proportion z-scores of the self and total share changes
        /// (positive: the share grew).
        public var selfZ: Double
        public var totalZ: Double

        public var function: FunctionName { values.function }
        /// Percentage points: target share minus base share.
        public var selfPoints: Double { selfShareTarget - selfShareBase }
        public var totalPoints: Double { totalShareTarget - totalShareBase }
        public var selfDelta: Double { values.selfTarget - values.selfBase }
        public var totalDelta: Double { values.totalTarget - values.totalBase }
    }

    public var mode: Mode
    /// `samples` or `nanoseconds`.
    public var unit: String
    public var base: Side
    public var target: Side
    /// Largest change first: of self share in normalized mode, of raw self
    /// value in absolute mode; ties by total, then by name.
    public var rows: [Row]

    public init(functions: [FunctionValues], base: Side, target: Side, unit: String, mode: Mode) {
        self.mode = mode
        self.unit = unit
        self.base = base
        self.target = target
        let nA = Double(base.samples), nB = Double(target.samples)
        func share(_ v: Double, _ total: Double) -> Double { total > 0 ? v / total : 0 }
        var rows = functions.map { f -> Row in
            let sA = share(f.selfBase, base.total), sB = share(f.selfTarget, target.total)
            let tA = share(f.totalBase, base.total), tB = share(f.totalTarget, target.total)
            return Row(values: f, selfShareBase: sA * 100, selfShareTarget: sB * 100, totalShareBase: tA * 100, totalShareTarget: tB * 100,
                       selfZ: Self.zScore(sA, nA, sB, nB), totalZ: Self.zScore(tA, nA, tB, nB))
        }
        let byPoints = mode == .normalized
        rows.sort { x, y in
            let a1 = abs(byPoints ? x.selfPoints : x.selfDelta), b1 = abs(byPoints ? y.selfPoints : y.selfDelta)
            if a1 != b1 { return a1 > b1 }
            let a2 = abs(byPoints ? x.totalPoints : x.totalDelta), b2 = abs(byPoints ? y.totalPoints : y.totalDelta)
            if a2 != b2 { return a2 > b2 }
            return (x.function.name, x.function.file) < (y.function.name, y.function.file)
        }
        self.rows = rows
    }

    /// The two-proportion z-score of a share that went from `pA` (of `nA`
    /// samples) to `pB` (of `nB`): the change over its standard error under
    /// "nothing changed", sqrt(p(1-p)(1/nA + 1/nB)) with p pooled. Sampling at a
    /// fixed rate makes each sample a draw of "which function was running", so
    /// a share's noise shrinks as 1/sqrt(N).
    public static func zScore(_ pA: Double, _ nA: Double, _ pB: Double, _ nB: Double) -> Double {
        guard nA > 0, nB > 0 else { return 0 }
        let pooled = (pA * nA + pB * nB) / (nA + nB)
        let variance = pooled * (1 - pooled) * (1 / nA + 1 / nB)
        guard variance > 0 else { return pA == pB ? 0 : (pB > pA ? .infinity : -.infinity) }
        return (pB - pA) / variance.squareRoot()
    }

    /// Per-function raw values of a diff built with `normalized: false`.
    public static func functionValues(_ diff: StackDiff, names: [Int64: FunctionName]) -> [FunctionValues] {
        diff.functions.values.map { f in
            FunctionValues(function: names[f.function] ?? FunctionName(name: "?", file: ""),
                           selfBase: f.selfA, selfTarget: f.selfB, totalBase: f.totalA, totalTarget: f.totalB)
        }
    }
}
