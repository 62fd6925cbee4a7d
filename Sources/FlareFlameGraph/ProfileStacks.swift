import FlareProfile

/// A pprof profile reduced to what flame graphs and diffs use: stacks of
/// interned functions (name and file; inlined calls expanded) with their
/// sample count and CPU time, equal stacks merged.
public struct ProfileStacks: Sendable {
    /// Function ids index this array.
    public private(set) var functions: [FunctionName] = []
    public private(set) var stacks: [(frames: [Int64], samples: Int64, cpuNanos: Int64)] = []
    public private(set) var totalSamples: Int64 = 0
    public private(set) var totalCPUNanos: Int64 = 0

    /// - Throws: `ProfileStacksError` when the profile has neither a
    ///   `samples/count` nor a `cpu/nanoseconds` value.
    public init(_ profile: Profile) throws(ProfileStacksError) {
        let samplesIndex = profile.valueIndex(type: "samples", unit: "count")
        let cpuIndex = profile.valueIndex(type: "cpu", unit: "nanoseconds")
        guard samplesIndex != nil || cpuIndex != nil else {
            let types = profile.sampleTypes.map { profile.string($0.type) + "/" + profile.string($0.unit) }
            throw ProfileStacksError.noCPUValues(types)
        }
        var functionIDs: [FunctionName: Int64] = [:]
        var stackIndex: [[Int64]: Int] = [:]
        profile.forEachSampleFrames { sample, frames in
            let ids = frames.map { frame -> Int64 in
                let name = FunctionName(name: frame.function, file: frame.file, line: frame.startLine)
                if let id = functionIDs[name] { return id }
                let id = Int64(functions.count)
                functions.append(name)
                functionIDs[name] = id
                return id
            }
            func value(_ index: Int?) -> Int64 {
                guard let index, index < sample.values.count else { return 0 }
                return max(0, sample.values[index])
            }
            let samples = value(samplesIndex), cpu = value(cpuIndex)
            totalSamples &+= samples
            totalCPUNanos &+= cpu
            if let i = stackIndex[ids] {
                stacks[i].samples &+= samples
                stacks[i].cpuNanos &+= cpu
            } else {
                stackIndex[ids] = stacks.count
                stacks.append((ids, samples, cpu))
            }
        }
    }

    public var hasSamples: Bool { stacks.contains { $0.samples > 0 } }
    public var hasCPU: Bool { stacks.contains { $0.cpuNanos > 0 } }
}

public enum ProfileStacksError: Error, CustomStringConvertible, Equatable {
    case noCPUValues([String])

    public var description: String {
        switch self {
        case .noCPUValues(let types):
            "the profile has no samples/count or cpu/nanoseconds values (it has \(types.isEmpty ? "no sample types" : types.joined(separator: ", "))): is it a CPU profile?"
        }
    }
}
