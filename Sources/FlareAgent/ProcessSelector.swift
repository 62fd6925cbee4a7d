import FlareProcesses
import FlareRecorder
import FlareSymbols
import Foundation

/// Which processes the agent profiles: `targets.*` of the configuration.
/// A process is profiled when it matches every given target and no exclusion.
public struct ProcessSelector: @unchecked Sendable {
    // NSRegularExpression is immutable and safe to share once built.
    let pids: Set<Int32>
    let pattern: NSRegularExpression?
    let cgroupPrefix: String?
    let exclusions: [NSRegularExpression]
    let ownPid = getpid()

    init(_ configuration: AgentConfiguration) {
        pids = Set(configuration.pids)
        pattern = configuration.processPattern.flatMap { try? NSRegularExpression(pattern: $0) }
        cgroupPrefix = configuration.cgroupPrefix.map { $0.hasSuffix("/") && $0.count > 1 ? String($0.dropLast()) : $0 }
        exclusions = configuration.excludePatterns.compactMap { try? NSRegularExpression(pattern: $0) }
    }

    public func includes(_ process: ProcessIdentity) -> Bool {
        // Never the agent itself: its cost is in its self-metrics, and its
        // own large binary would cost symbolization time at every window.
        if process.pid == ownPid { return false }
        if !pids.isEmpty && !pids.contains(process.pid) { return false }
        if let pattern, !Self.matches(pattern, process) { return false }
        if let prefix = cgroupPrefix, !(process.cgroup == prefix || process.cgroup.hasPrefix(prefix + "/") || prefix == "/") { return false }
        return !exclusions.contains { Self.matches($0, process) }
    }

    var predicate: @Sendable (ProcessIdentity) -> Bool { { process in self.includes(process) } }

    static func matches(_ regex: NSRegularExpression, _ process: ProcessIdentity) -> Bool {
        [process.name, process.executableName].contains { name in
            regex.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
        }
    }
}

extension AgentConfiguration {
    public var processSelector: ProcessSelector { ProcessSelector(self) }

    /// The sampler's settings.
    public var continuousOptions: ContinuousOptions {
        var options = ContinuousOptions()
        options.frequency = frequency
        options.callGraph = callGraph
        options.stackBytes = stackBytes
        options.spanLabels = spanLabels
        options.cacheBytes = cacheBytes
        options.maxDebugInfoBytes = debugInfoMaxBytes
        options.debuginfod = debuginfodURLs.map {
            DebuginfodFetcher.Settings(urls: $0, cacheDirectory: debuginfodCacheDirectory, timeoutSeconds: Int(debuginfodTimeoutSeconds.rounded(.up)))
        }
        options.processLimits = ProcessLimits(mappings: maxMappingsPerProcess, threadNames: maxThreadNamesPerProcess)
        options.includes = processSelector.predicate
        return options
    }
}
