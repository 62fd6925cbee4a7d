/// Self and total value per function name: what a "top" table shows.
public struct FunctionTotals: Sendable {
    public struct Entry: Sendable, Equatable {
        public var function: String
        public var file: String
        public var selfValue: Int64
        public var totalValue: Int64
    }

    public let entries: [Entry]
    public let grandTotal: Int64

    /// Sums the `valueType` values (default: samples). A function that appears
    /// several times in one stack (recursion) counts once towards its total.
    public init(_ profile: Profile, valueType: String = "samples", labelFilter: ((Profile.Sample) -> Bool)? = nil) {
        let index = profile.valueIndex(named: valueType)
        let locations = profile.locationLookup()
        let functions = profile.functionLookup()
        var byName: [String: Entry] = [:]
        var grand: Int64 = 0
        for sample in profile.samples where labelFilter?(sample) ?? true {
            guard index < sample.values.count else { continue }
            let value = sample.values[index]
            grand.addSaturating(value)
            let frames = profile.frames(of: sample, locations: locations, functions: functions)
            if let leaf = frames.first {
                byName[leaf.function, default: Entry(function: leaf.function, file: leaf.file, selfValue: 0, totalValue: 0)].selfValue.addSaturating(value)
            }
            var seen = Set<String>()
            for frame in frames where seen.insert(frame.function).inserted {
                byName[frame.function, default: Entry(function: frame.function, file: frame.file, selfValue: 0, totalValue: 0)].totalValue.addSaturating(value)
            }
        }
        entries = Array(byName.values)
        grandTotal = grand
    }

    public func topBySelf(_ n: Int) -> [Entry] {
        Array(entries.sorted { ($0.selfValue, $1.function) > ($1.selfValue, $0.function) }.prefix(n))
    }

    public func topByTotal(_ n: Int) -> [Entry] {
        Array(entries.sorted { ($0.totalValue, $1.function) > ($1.totalValue, $0.function) }.prefix(n))
    }

    public func percent(_ value: Int64) -> Double {
        grandTotal == 0 ? 0 : Double(value) * 100 / Double(grandTotal)
    }
}
