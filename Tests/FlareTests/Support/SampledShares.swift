import FlareProfile

/// Functions' self shares of a sampled profile, with what chance alone lets
/// them stray by. A share of n samples has a standard error of
/// sqrt(p (1 - p) / n); tests allow four of them plus one point for what
/// sampling does not explain (the machine's timing), instead of a fixed
/// number of points that is too loose for small shares and, on a loaded
/// machine, too tight for large ones.
struct SampledShares {
    /// Percent of all samples, by function.
    var percent: [String: Double]
    var samples: Double

    init(selfSharesOf profile: Profile) {
        let totals = FunctionTotals(profile)
        percent = Dictionary(totals.entries.map { ($0.function, totals.percent($0.selfValue)) }, uniquingKeysWith: +)
        samples = Double(profile.samples.reduce(0) { $0 + $1.values[0] })
    }

    subscript(function: String) -> Double? { percent[function] }

    /// Points a share of `samples` samples may differ from a known fraction `expected` (0...1).
    static func tolerance(expected: Double, samples: Double) -> Double {
        pointsOfChance(expected * (1 - expected) / max(samples, 1))
    }

    /// Points two independent sampled shares, `a` of `n` and `b` of `m`
    /// samples (fractions 0...1), may differ by when both measure one
    /// proportion: the pooled share's standard error of the difference.
    static func tolerance(_ a: Double, of n: Double, _ b: Double, of m: Double) -> Double {
        let (n, m) = (max(n, 1), max(m, 1))
        let pooled = (a * n + b * m) / (n + m)
        return pointsOfChance(pooled * (1 - pooled) * (1 / n + 1 / m))
    }

    /// Points two sampled shares of different expected fractions `p` (of `n`
    /// samples) and `q` (of `m`) may differ from `q - p` by.
    static func tolerance(ofChange p: Double, _ n: Double, _ q: Double, _ m: Double) -> Double {
        pointsOfChance(p * (1 - p) / max(n, 1) + q * (1 - q) / max(m, 1))
    }

    private static func pointsOfChance(_ variance: Double) -> Double { 4 * 100 * variance.squareRoot() + 1 }
}
