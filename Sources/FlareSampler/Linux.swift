import Glibc
import CPerfEvent

/// Small Linux facts read from /proc and /sys.
public enum Linux {
    /// A /proc or /sys text file, at most `maxBytes` of it: what a process
    /// makes the kernel report (its maps, its name) is bounded like anything
    /// else it controls (docs/security.md).
    public static func readFile(_ path: String, maxBytes: Int = 32 << 20) -> String? {
        guard let file = fopen(path, "re") else { return nil }
        defer { fclose(file) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < maxBytes {
            let n = fread(&buffer, 1, min(buffer.count, maxBytes - result.count), file)
            if n <= 0 { break }
            result.append(contentsOf: buffer[..<n])
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// CPUs listed in /sys/devices/system/cpu/online ("0-3,6").
    public static func onlineCPUs() -> [Int32] {
        guard let text = readFile("/sys/devices/system/cpu/online") else {
            return Array(0..<Int32(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        }
        var cpus: [Int32] = []
        for part in text.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let bounds = part.split(separator: "-").compactMap { Int32($0) }
            if bounds.count == 2 { cpus += Array(bounds[0]...bounds[1]) } else if let one = bounds.first { cpus.append(one) }
        }
        return cpus
    }

    public static var maxSampleRate: UInt64 {
        readFile("/proc/sys/kernel/perf_event_max_sample_rate").flatMap { UInt64($0.trimmingWhitespace()) } ?? 100_000
    }

    public static var perfEventParanoid: String {
        readFile("/proc/sys/kernel/perf_event_paranoid")?.trimmingWhitespace() ?? "unknown"
    }

    public static func processExists(_ pid: Int32) -> Bool {
        pid > 0 && access("/proc/\(pid)", F_OK) == 0
    }

    /// Thread ids of a live process.
    public static func threads(of pid: Int32, procRoot: String = "/proc") -> [Int32] {
        guard let dir = opendir("\(procRoot)/\(pid)/task") else { return [] }
        defer { closedir(dir) }
        var tids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if let tid = Int32(name) { tids.append(tid) }
        }
        return tids
    }

    /// Pids of every live process.
    public static func allProcesses() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if let pid = Int32(name) { pids.append(pid) }
        }
        return pids
    }

    /// CLOCK_MONOTONIC in nanoseconds: the clock perf samples are stamped with.
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The x86-64 time-stamp counter in ticks; 0 elsewhere.
    public static func timestampCounter() -> UInt64 {
        cperf_timestamp_counter()
    }

    /// For a long-running process that must stay small: fewer malloc arenas
    /// (call before starting threads) …
    public static func limitMallocArenas(to count: Int32) {
        cperf_limit_malloc_arenas(count)
    }

    /// … and freed heap handed back to the kernel now and then.
    public static func returnFreeMemory() {
        cperf_return_free_memory()
    }

    /// … and the program's own code pages too: start-up touches megabytes of
    /// code run once (and the kernel maps pages around each fault), while a
    /// window's work runs a small part of it.
    public static func releaseCodePages() {
        _ = cperf_release_code_pages()
    }

    /// Bytes of heap in use: the part of the resident memory the program allocated.
    public static func heapBytesInUse() -> Int {
        Int(cperf_heap_in_use())
    }

    public static func wallClockNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

extension String {
    public func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
