import FlareProfile
import FlareRecorder
import FlareSampler
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Samples the machine on a dedicated thread (it blocks in poll, never in the
/// shared task pool) and, at every window boundary, writes one profile per
/// service to the spool and wakes the uploader. On graceful shutdown it stops
/// sampling, cuts the open window short and spools it, then returns.
public final class WindowSampler: Service, @unchecked Sendable {
    // The profiler is touched only by the sampling thread once it runs.
    private var profiler: ContinuousProfiler
    /// Counts of the perf sessions a reload replaced.
    private var retired = ContinuousStatistics()
    private let spool: WindowSpool
    private let uploader: WindowUploader
    private let metrics: AgentMetrics
    private let logger: Logger
    private let shared: NIOLockedValueBox<Shared>

    private struct Shared {
        var stop = false
        var configuration: AgentConfiguration
        var pendingConfiguration: AgentConfiguration?
    }

    public init(profiler: ContinuousProfiler, configuration: AgentConfiguration, spool: WindowSpool, uploader: WindowUploader,
                metrics: AgentMetrics, logger: Logger) {
        self.profiler = profiler
        self.spool = spool
        self.uploader = uploader
        self.metrics = metrics
        self.logger = logger
        shared = NIOLockedValueBox(Shared(configuration: configuration))
    }

    /// Applies a reloaded configuration at the sampling thread's next turn
    /// (`flare_agent_config_reloads_total` counts it once applied).
    public func reload(_ configuration: AgentConfiguration) {
        shared.withLockedValue { $0.pendingConfiguration = configuration }
    }

    public func run() async throws {
        let (finished, done) = AsyncStream.makeStream(of: Void.self)
        let thread = Thread { [self] in
            self.loop()
            done.finish()
        }
        thread.name = "flare-sampler"
        thread.start()
        // Returns when SIGTERM/SIGINT starts the graceful shutdown (or the task is cancelled).
        try? await gracefulShutdown()
        shared.withLockedValue { $0.stop = true }
        // The open window gets a bounded time to be cut and spooled: the agent
        // promises to exit within 5 s, and a host must be able to rely on it.
        let flushed = await withTaskGroup(of: Bool.self) { group in
            group.addTask { for await _ in finished {}; return true }
            group.addTask { try? await Task.sleep(for: .seconds(Self.flushBudgetSeconds)); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !flushed {
            logger.warning("the open window could not be spooled in time and is lost", metadata: ["budget_seconds": "\(Self.flushBudgetSeconds)"])
        }
    }

    static let flushBudgetSeconds = 2.5

    private func loop() {
        var configuration = shared.withLockedValue { $0.configuration }
        var windowStart = Linux.wallClockNanos()
        var windowEnd = Self.nextBoundary(after: windowStart, seconds: configuration.windowSeconds)
        logger.info("sampling", metadata: ["frequency": "\(configuration.frequency)", "call_graph": "\(configuration.callGraph.rawValue)",
                                           "window": "\(configuration.windowSeconds)s", "host": "\(configuration.hostName)"])
        // What start-up ran (option parsing, configuration, servers) is not run again.
        Linux.releaseCodePages()
        while !shared.withLockedValue({ $0.stop }) {
            var fds = profiler.pollDescriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // Span rings reach back only a few transitions: with publishers
            // present, read every millisecond; otherwise a relaxed pace.
            _ = poll(&fds, nfds_t(fds.count), profiler.wantsPromptDrains ? 1 : 50)
            profiler.drain()
            if let next = shared.withLockedValue({ s -> AgentConfiguration? in defer { s.pendingConfiguration = nil }; return s.pendingConfiguration }) {
                let now = Linux.wallClockNanos()
                if next.samplingKey != configuration.samplingKey {
                    // A new perf session: close the window under the old settings first,
                    // and carry the old session's counts over so the counters never go back.
                    profiler.stop()
                    ship(profiler.cutWindow(start: windowStart, end: now, hostName: configuration.hostName), configuration: configuration, start: windowStart, end: now)
                    windowStart = now
                    let retiredBefore = retired
                    retired = retired.accumulating(profiler.statistics)
                    do {
                        profiler = try ContinuousProfiler(options: next.continuousOptions)
                    } catch {
                        logger.error("cannot apply the new sampling settings; keeping the old ones", metadata: ["error": "\(error)"])
                        if let old = try? ContinuousProfiler(options: configuration.continuousOptions) { profiler = old } else { retired = retiredBefore }
                        metrics.add(\.configReloadErrors, 1)
                        continue
                    }
                } else {
                    profiler.setIncludes(next.processSelector.predicate)
                }
                configuration = next
                windowEnd = Self.nextBoundary(after: now, seconds: configuration.windowSeconds)
                shared.withLockedValue { $0.configuration = next }
                metrics.add(\.configReloads, 1)
                logger.info("configuration reloaded")
            }
            let now = Linux.wallClockNanos()
            if now >= windowEnd {
                ship(profiler.cutWindow(start: windowStart, end: windowEnd, hostName: configuration.hostName),
                     configuration: configuration, start: windowStart, end: windowEnd)
                windowStart = windowEnd
                windowEnd = Self.nextBoundary(after: now, seconds: configuration.windowSeconds)
            }
        }
        let stopping = Linux.monotonicNanos()
        profiler.stop()
        let end = Linux.wallClockNanos()
        ship(profiler.cutWindow(start: windowStart, end: end, hostName: configuration.hostName), configuration: configuration, start: windowStart, end: end)
        logger.info("sampling stopped; the open window was spooled", metadata: ["milliseconds": "\((Linux.monotonicNanos() - stopping) / 1_000_000)"])
    }

    /// Windows end on multiples of their length (10 s windows end at :00, :10, …).
    static func nextBoundary(after nanos: Int64, seconds: Double) -> Int64 {
        let length = Int64(seconds * 1e9)
        return (nanos / length + 1) * length
    }

    private func ship(_ windows: [ProcessGroupWindow], configuration: AgentConfiguration, start: Int64, end: Int64) {
        let resident = OwnUsage.current().residentBytes
        if resident > configuration.memoryLimit {
            profiler.dropCaches()
            logger.notice("over agent.memory_limit: caches dropped", metadata: ["resident_bytes": "\(resident)", "memory_limit": "\(configuration.memoryLimit)"])
        }
        metrics.updateSampler(retired.accumulating(profiler.statistics))
        defer {
            Linux.returnFreeMemory()
            Linux.releaseCodePages()
        }
        for window in windows where window.samples > 0 {
            var labels = configuration.labels
            for (key, value) in window.resource { labels[key] = value }
            let metadata = WindowMetadata(windowID: Self.windowID(host: configuration.hostName, start: start, labels: labels),
                                          service: window.service, labels: labels, startNanos: start, endNanos: end, samples: window.samples)
            do {
                let dropped = try spool.add(metadata, payload: window.profile.gzippedPprof())
                metrics.add(\.windows, 1)
                logger.debug("window spooled", metadata: ["window_id": "\(metadata.windowID)", "service": "\(metadata.service)", "samples": "\(metadata.samples)"])
                if dropped > 0 {
                    logger.warning("spool full: dropped the oldest windows", metadata: ["dropped": "\(dropped)", "spool_max_bytes": "\(spool.maxBytes)"])
                }
            } catch {
                metrics.add(\.spoolWriteErrors, 1)
                logger.error("cannot spool a window; it is lost", metadata: ["service": "\(window.service)", "error": "\(error)"])
            }
        }
        uploader.notify()
    }

    /// Unique per host, window start and resource: retries reuse it, so the
    /// store keeps one copy however often a window is sent.
    static func windowID(host: String, start: Int64, labels: [String: String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            for byte in (key + "=" + value + "\n").utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        return "\(host.prefix(64))-\(start)-\(String(hash, radix: 16))"
    }
}
