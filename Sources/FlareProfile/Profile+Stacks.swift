extension Profile {
    /// One frame of a sample's stack, after inline expansion.
    public struct Frame: Hashable, Sendable {
        public var function: String
        public var file: String
        public var line: Int64
        /// The function's first line (pprof `start_line`); 0 if unknown.
        public var startLine: Int64 = 0
    }

    /// The frames of a sample, leaf first, each inlined call its own frame.
    public func frames(of sample: Sample) -> [Frame] {
        let locationByID = locationLookup()
        let functionByID = functionLookup()
        return frames(of: sample, locations: locationByID, functions: functionByID)
    }

    func frames(of sample: Sample, locations: [UInt64: Location], functions: [UInt64: Function]) -> [Frame] {
        var result: [Frame] = []
        result.reserveCapacity(sample.locationIDs.count)
        for id in sample.locationIDs {
            guard let location = locations[id] else { continue }
            if location.lines.isEmpty {
                result.append(Frame(function: String(format0x: location.address), file: "", line: 0))
            }
            for line in location.lines {
                let function = functions[line.functionID]
                result.append(Frame(function: string(function?.name ?? 0), file: string(function?.filename ?? 0), line: line.line,
                                    startLine: function?.startLine ?? 0))
            }
        }
        return result
    }

    func locationLookup() -> [UInt64: Location] {
        Dictionary(locations.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func functionLookup() -> [UInt64: Function] {
        Dictionary(functions.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Index of the sample type named `type`, or the default / last one.
    public func valueIndex(named type: String? = nil) -> Int {
        let wanted = type ?? string(defaultSampleType)
        if let i = sampleTypes.firstIndex(where: { string($0.type) == wanted }) { return i }
        return max(0, sampleTypes.count - 1)
    }

    /// Brendan Gregg's folded format: `root;caller;leaf count`, one line per
    /// distinct stack, counting the `samples` value (or the first one).
    public func folded(valueType: String = "samples") -> String {
        let index = valueIndex(named: valueType)
        let locations = locationLookup()
        let functions = functionLookup()
        var counts: [String: Int64] = [:]
        var order: [String] = []
        for sample in samples {
            let names = frames(of: sample, locations: locations, functions: functions).reversed().map {
                // ';' separates frames and ' ' the count: neither may appear raw in a name.
                $0.function.replacingAll(";", with: ":").replacingAll("\n", with: " ")
            }
            let key = names.joined(separator: ";")
            if counts[key] == nil { order.append(key) }
            counts[key, default: 0].addSaturating(index < sample.values.count ? sample.values[index] : 0)
        }
        order.sort { counts[$0]! != counts[$1]! ? counts[$0]! > counts[$1]! : $0 < $1 }
        return order.map { "\($0) \(counts[$0]!)\n" }.joined()
    }
}

extension Int64 {
    /// Sums of a decoded profile's values: any Int64 is valid pprof, so a
    /// sum may not fit, and then stops at the bound instead of trapping.
    mutating func addSaturating(_ value: Int64) {
        let (sum, overflow) = addingReportingOverflow(value)
        self = overflow ? (value > 0 ? .max : .min) : sum
    }
}

extension String {
    init(format0x value: UInt64) { self = "0x" + String(value, radix: 16) }

    func replacingAll(_ target: Character, with replacement: String) -> String {
        guard contains(target) else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
