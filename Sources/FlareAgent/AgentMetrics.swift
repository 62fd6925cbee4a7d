import FlareRecorder
import FlareSampler
import FlareTargetFiles
import Foundation
import NIOConcurrencyHelpers

/// The agent's self-metrics, shown as Prometheus text on `/metrics`.
public final class AgentMetrics: Sendable {
    public struct Counters: Sendable {
        public var windows = 0
        public var uploadedWindows = 0
        public var uploadedBytes = 0
        public var uploadErrors = 0
        public var spoolWriteErrors = 0
        public var configReloads = 0
        public var configReloadErrors = 0
        public var sampler = ContinuousStatistics()
    }

    private let counters = NIOLockedValueBox(Counters())
    private let started = Date()

    public init() {}

    public func add(_ counter: WritableKeyPath<Counters, Int>, _ n: Int) {
        counters.withLockedValue { $0[keyPath: counter] += n }
    }

    /// The sampler thread publishes its running totals after each window.
    public func updateSampler(_ statistics: ContinuousStatistics) {
        counters.withLockedValue { $0.sampler = statistics }
    }

    public var snapshot: Counters { counters.withLockedValue { $0 } }

    /// Prometheus text exposition format 0.0.4.
    public func prometheusText(spool: WindowSpool) -> String {
        let c = snapshot
        let s = c.sampler
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: some CustomStringConvertible) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        metric("flare_agent_samples_total", "counter", "Samples taken in profiled processes.", s.samples)
        metric("flare_agent_excluded_samples_total", "counter", "Samples of processes the targets exclude.", s.excludedSamples)
        metric("flare_agent_lost_samples_total", "counter", "Records the kernel dropped because a ring buffer was full.", s.lostRecords)
        metric("flare_agent_unwind_failures_total", "counter", "Stacks that ended in a truncation marker.", s.unwindFailures)
        metric("flare_agent_unlabelled_samples_total", "counter", "Samples of span-publishing threads that could not be attributed to a span.", s.unlabelledSamples)
        metric("flare_agent_labelled_samples_total", "counter", "Samples labelled with a span.", s.labelledSamples)
        metric("flare_agent_windows_total", "counter", "Windows (one per service and time window) spooled.", c.windows)
        metric("flare_agent_uploaded_windows_total", "counter", "Windows acknowledged by a destination.", c.uploadedWindows)
        metric("flare_agent_uploaded_bytes_total", "counter", "Compressed profile bytes acknowledged.", c.uploadedBytes)
        metric("flare_agent_upload_errors_total", "counter", "Failed upload attempts.", c.uploadErrors)
        metric("flare_agent_spool_bytes", "gauge", "Bytes waiting in the spool.", spool.bytes)
        metric("flare_agent_spool_dropped_windows_total", "counter", "Oldest windows dropped because the spool was full.", spool.droppedWindows)
        metric("flare_agent_spool_set_aside_total", "counter", "Corrupt, truncated or rejected spool files set aside.", spool.setAsideFiles)
        metric("flare_agent_spool_write_errors_total", "counter", "Windows that could not be written to the spool.", c.spoolWriteErrors)
        metric("flare_agent_config_reloads_total", "counter", "Configuration reloads on SIGHUP.", c.configReloads)
        metric("flare_agent_config_reload_errors_total", "counter", "SIGHUP reloads rejected (the old configuration stays).", c.configReloadErrors)
        metric("flare_agent_tracked_processes", "gauge", "Processes the agent holds state for.", s.trackedProcesses)
        metric("flare_agent_tracked_processes_peak", "gauge", "The most processes the agent held state for between two drains during the last window.", s.trackedProcessesPeak)
        metric("flare_agent_cache_bytes", "gauge", "Estimated bytes in symbol and unwind caches.", s.cacheBytes)
        metric("flare_agent_cache_evictions_total", "counter", "Files dropped from the symbol and unwind caches, least recently used first, to stay within agent.cache_bytes.", s.cacheEvictions)
        let usage = OwnUsage.current()
        metric("flare_agent_dropped_mappings_total", "counter", "Executable mappings not held because their process was at agent.max_mappings_per_process.", s.droppedMappings)
        metric("flare_agent_dropped_thread_names_total", "counter", "Thread names not held because their process was at agent.max_thread_names_per_process.", s.droppedThreadNames)
        metric("flare_agent_debuginfod_fetched_total", "counter", "Debug files fetched from the debuginfod servers (agent.debuginfod_urls) and used.", s.debuginfodFetched)
        metric("flare_agent_debuginfod_misses_total", "counter", "debuginfod fetches that found nothing, failed or timed out (asked again after a while; frames stay unnamed meanwhile).", s.debuginfodMisses)
        metric("flare_agent_debuginfod_refused_total", "counter", "Files a debuginfod server gave that were not the debug file asked for (another build-id, not ELF): not used.", s.debuginfodRefused)
        metric("flare_agent_perf_maps_refused_total", "counter", "Attempts to read a JIT perf map refused (once per window while it stays so): not a regular file, not owned by the process's user or root, or writable by others.", s.perfMapsRefused)
        metric("flare_agent_perf_maps_truncated_total", "counter", "JIT perf maps read only up to their size bound.", s.perfMapsTruncated)
        metric("flare_agent_truncated_file_pages_total", "counter", "Pages of mapped files that their owner truncated under the agent, read as zeros.", TruncationGuard.faults)
        metric("flare_agent_cpu_seconds_total", "counter", "The agent's own CPU time, user and system.", usage.cpuSeconds)
        metric("flare_agent_resident_bytes", "gauge", "The agent's resident memory.", usage.residentBytes)
        metric("flare_agent_peak_resident_bytes", "gauge", "The agent's peak resident memory.", usage.peakResidentBytes)
        metric("flare_agent_heap_bytes", "gauge", "The agent's heap in use (malloc), part of its resident memory.", Linux.heapBytesInUse())
        metric("flare_agent_uptime_seconds", "gauge", "Seconds since the agent started.", Int(Date().timeIntervalSince(started)))
        return out
    }
}

/// The process's own CPU time and memory, from getrusage and /proc/self/status.
public struct OwnUsage: Sendable {
    public var cpuSeconds: Double
    public var residentBytes: Int
    public var peakResidentBytes: Int

    public static func current() -> OwnUsage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        var rss = 0, peak = 0
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 2, let kib = Int(fields[1]) else { continue }
                if line.hasPrefix("VmRSS:") { rss = kib * 1024 }
                if line.hasPrefix("VmHWM:") { peak = kib * 1024 }
            }
        }
        return OwnUsage(cpuSeconds: cpu, residentBytes: rss, peakResidentBytes: peak)
    }
}
