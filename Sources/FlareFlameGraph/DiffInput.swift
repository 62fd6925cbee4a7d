/// Two profiles made comparable: stacks over one shared function table, in the
/// one value both sides have (sample counts, else CPU time).
public struct DiffInput: Sendable {
    public var base: [(frames: [Int64], value: Double)]
    public var target: [(frames: [Int64], value: Double)]
    public var names: [Int64: FunctionName]
    /// `samples` or `nanoseconds`.
    public var unit: String
    public var baseTotal: Double
    public var targetTotal: Double
    /// Samples behind each side's total (estimated from the period when the
    /// profiles only carry CPU time).
    public var baseSamples: Int64
    public var targetSamples: Int64

    /// - Parameters:
    ///   - basePeriod, targetPeriod: nanoseconds per sample (the profiles'
    ///     `period`), used only when the sides carry CPU time but no counts.
    /// - Throws: `DiffInputError` when the sides share no value type or a side is empty.
    public init(base: ProfileStacks, target: ProfileStacks, basePeriod: Int64 = 0, targetPeriod: Int64 = 0) throws(DiffInputError) {
        let useSamples: Bool
        if base.hasSamples && target.hasSamples {
            useSamples = true
        } else if base.hasCPU && target.hasCPU {
            useSamples = false
        } else if !base.hasSamples && !base.hasCPU {
            throw .empty("base")
        } else if !target.hasSamples && !target.hasCPU {
            throw .empty("target")
        } else {
            throw .mismatchedTypes(base: base.hasSamples ? "samples/count" : "cpu/nanoseconds",
                                   target: target.hasSamples ? "samples/count" : "cpu/nanoseconds")
        }
        unit = useSamples ? "samples" : "nanoseconds"
        var ids: [FunctionName: Int64] = [:]
        var names: [Int64: FunctionName] = [:]
        func side(_ stacks: ProfileStacks) -> [(frames: [Int64], value: Double)] {
            let local = stacks.functions.map { name -> Int64 in
                if let id = ids[name] { return id }
                let id = Int64(ids.count)
                ids[name] = id
                names[id] = name
                return id
            }
            return stacks.stacks.compactMap { stack -> (frames: [Int64], value: Double)? in
                let value = Double(useSamples ? stack.samples : stack.cpuNanos)
                return value > 0 ? (frames: stack.frames.map { local[Int($0)] }, value: value) : nil
            }
        }
        self.base = side(base)
        self.target = side(target)
        self.names = names
        baseTotal = Double(useSamples ? base.totalSamples : base.totalCPUNanos)
        targetTotal = Double(useSamples ? target.totalSamples : target.totalCPUNanos)
        func count(_ stacks: ProfileStacks, _ period: Int64) -> Int64 {
            if stacks.hasSamples { return stacks.totalSamples }
            return period > 0 ? stacks.totalCPUNanos / period : 0
        }
        baseSamples = count(base, basePeriod)
        targetSamples = count(target, targetPeriod)
    }
}

public enum DiffInputError: Error, CustomStringConvertible, Equatable {
    case empty(String)
    case mismatchedTypes(base: String, target: String)

    public var description: String {
        switch self {
        case .empty(let side):
            "the \(side) has no samples: nothing to compare (record longer, or check the selection)"
        case .mismatchedTypes(let base, let target):
            "mismatched sample types: the base has only \(base) values and the target only \(target); compare two profiles of the same kind"
        }
    }
}
