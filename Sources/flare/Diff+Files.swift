import FlareFlameGraph
import FlareProfile
import Glibc

/// `flare diff BASE TARGET`: two pprof files.
enum FileDiff {
    static func compare(basePath: String, targetPath: String, mode: DiffReport.Mode) throws -> DiffComparison {
        let (baseStacks, basePeriod) = try load(basePath, side: "base")
        let (targetStacks, targetPeriod) = try load(targetPath, side: "target")
        let input: DiffInput
        do {
            input = try DiffInput(base: baseStacks, target: targetStacks, basePeriod: basePeriod, targetPeriod: targetPeriod)
        } catch {
            throw InputError(description: "cannot compare \(basePath) with \(targetPath): \(error.description)")
        }
        let raw = StackDiff(a: input.base, b: input.target, normalized: false)
        let report = DiffReport(functions: DiffReport.functionValues(raw, names: input.names),
                                base: .init(label: basePath, total: input.baseTotal, samples: input.baseSamples),
                                target: .init(label: targetPath, total: input.targetTotal, samples: input.targetSamples),
                                unit: input.unit, mode: mode)
        return DiffComparison(report: report) {
            let diff = mode == .absolute ? raw : StackDiff(a: input.base, b: input.target, normalized: true)
            return DiffDocument.json(diff, names: input.names, kept: diff.tree.keptNodes(maxNodes: 2048), unit: input.unit, mode: mode.rawValue,
                                     totalA: Int64(input.baseTotal), totalB: Int64(input.targetTotal), limit: 50)
        }
    }

    /// The file's stacks and sampling period; errors name the file and say what is wrong.
    static func load(_ path: String, side: String) throws -> (ProfileStacks, Int64) {
        guard let bytes = FileBytes.read(path) else {
            throw InputError(description: "cannot read the \(side) profile \(path): \(String(cString: strerror(errno)))")
        }
        let profile: Profile
        do {
            profile = try Profile(pprofFile: bytes)
        } catch {
            throw InputError(description: "the \(side) file \(path) is not a pprof profile (\(error)); flare diff reads pprof files, gzip-compressed or not")
        }
        do {
            let stacks = try ProfileStacks(profile)
            guard stacks.totalSamples > 0 || stacks.totalCPUNanos > 0 else {
                throw InputError(description: "the \(side) profile \(path) has no samples: nothing to compare (record longer, or check the file)")
            }
            return (stacks, profile.period)
        } catch let error as ProfileStacksError {
            throw InputError(description: "the \(side) profile \(path): \(error.description) flare diff compares CPU profiles")
        }
    }
}
