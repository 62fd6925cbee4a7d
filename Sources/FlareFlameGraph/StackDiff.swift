/// Selection A against selection B, stack by stack: the two-column call tree of
/// a differential flame graph and the per-function self and total of each side.
/// Shared by the store's `/api/v1/diff` and `flare diff` on pprof files.
public struct StackDiff: Sendable {
    public struct FunctionChange: Sendable {
        public var function: Int64
        public var selfA: Double
        public var selfB: Double
        public var totalA: Double
        public var totalB: Double
        public var selfDelta: Double { selfB - selfA }
        public var totalDelta: Double { totalB - totalA }
    }

    /// Column 0 is A, column 1 is B (already scaled).
    public var tree: FlameTree
    public var totalA: Double
    public var totalB: Double
    /// B's values were multiplied by this: totalA / totalB when normalized, else 1.
    public var scale: Double
    public var functions: [Int64: FunctionChange]

    /// - Parameters:
    ///   - a, b: stacks (function ids, leaf first) with their values.
    ///   - normalized: scale B to A's total so that shares are compared, not counts.
    public init(a: some Sequence<(frames: [Int64], value: Double)>, b: some Sequence<(frames: [Int64], value: Double)>, normalized: Bool) {
        let sideA = Array(a), sideB = Array(b)
        totalA = sideA.reduce(0) { $0 + $1.value }
        totalB = sideB.reduce(0) { $0 + $1.value }
        scale = normalized && totalA > 0 && totalB > 0 ? totalA / totalB : 1
        tree = FlameTree(columns: 2)
        functions = [:]
        for (column, side) in [sideA, sideB].enumerated() {
            let factor = column == 0 ? 1 : scale
            for stack in side {
                let x = stack.value * factor
                tree.add(frames: stack.frames, value: x, column: column)
                if let leaf = stack.frames.first {
                    functions[leaf, default: FunctionChange(function: leaf, selfA: 0, selfB: 0, totalA: 0, totalB: 0)].addSelf(x, column: column)
                }
                // A recursive function counts once per stack towards its total.
                for function in Set(stack.frames) {
                    functions[function, default: FunctionChange(function: function, selfA: 0, selfB: 0, totalA: 0, totalB: 0)].addTotal(x, column: column)
                }
            }
        }
    }

    /// The changes with the largest absolute self delta first (ties by id).
    public func rankedBySelfDelta() -> [FunctionChange] {
        functions.values.sorted { abs($0.selfDelta) != abs($1.selfDelta) ? abs($0.selfDelta) > abs($1.selfDelta) : $0.function < $1.function }
    }
}

extension StackDiff.FunctionChange {
    fileprivate mutating func addSelf(_ x: Double, column: Int) { if column == 0 { selfA += x } else { selfB += x } }
    fileprivate mutating func addTotal(_ x: Double, column: Int) { if column == 0 { totalA += x } else { totalB += x } }
}
