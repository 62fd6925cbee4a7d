import Dispatch
import FlareProfile
import Foundation
import Glibc
import Synchronization

/// Debug files by build-id from debuginfod servers, fetched off the path that
/// names frames: a lookup answers at once with a file already fetched, or
/// queues the build-id for a worker thread and answers nil; the frames are
/// named again once the file arrives (`Symbolizer.adoptFetchedDebugInfo`).
///
/// Each fetch runs elfutils' client library (libdebuginfod) in a helper
/// process (`flare debuginfod-find`), killed at its deadline. Two reasons: libdw
/// itself asks the servers in `$DEBUGINFOD_URLS` from inside an unwind when that
/// variable is in Flare's environment, so Flare keeps it out and gives it to the
/// helper only; and a slow or hostile server, libcurl and a large download cost
/// the helper's memory and time, never the agent's.
public final class DebuginfodFetcher: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Servers, space-separated, as in `$DEBUGINFOD_URLS`.
        public var urls: String
        /// libdebuginfod's cache (`$DEBUGINFOD_CACHE_PATH`): fetched files live there.
        public var cacheDirectory: String
        /// A fetch is given up (and counted as a miss) after this long.
        public var timeoutSeconds: Int
        /// Larger debug files are refused by the client before they are downloaded.
        public var maxBytes: Int
        /// A build-id that was not found is asked for again after this long.
        public var retrySeconds: Int
        /// The helper's argv, before the build-id.
        public var helper: [String]

        public init(urls: String, cacheDirectory: String, timeoutSeconds: Int = 10, maxBytes: Int = 512 << 20, retrySeconds: Int = 300,
                    helper: [String] = ["/proc/self/exe", "debuginfod-find"]) {
            self.urls = urls
            self.cacheDirectory = cacheDirectory
            self.timeoutSeconds = timeoutSeconds
            self.maxBytes = maxBytes
            self.retrySeconds = retrySeconds
            self.helper = helper
        }

        /// libdebuginfod's own default, shared with gdb and perf:
        /// `$DEBUGINFOD_CACHE_PATH`, else `$XDG_CACHE_HOME/debuginfod_client`, else `~/.cache/debuginfod_client`.
        public static func defaultCacheDirectory() -> String {
            func variable(_ name: String) -> String? { getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
            if let path = variable("DEBUGINFOD_CACHE_PATH") { return path }
            if let cache = variable("XDG_CACHE_HOME") { return cache + "/debuginfod_client" }
            return (variable("HOME") ?? (getuid() == 0 ? "/root" : "/tmp")) + "/.cache/debuginfod_client"
        }
    }

    public struct Statistics: Sendable, Equatable {
        /// Debug files fetched (or found in the cache) and accepted.
        public var fetched = 0
        /// Fetches that found nothing, failed or timed out.
        public var misses = 0
        /// Files a server gave that were not the debug file asked for (wrong build-id, not ELF).
        public var refused = 0
        /// The last miss's reason, for logs.
        public var lastFailure = ""
    }

    private enum State {
        case queued
        case found(String)
        case missing(retryAt: Double)
    }

    /// What the callers and the worker share, behind one lock.
    private struct Shared {
        var states: [String: State] = [:]
        var queue: [String] = []
        var arrivals: [String] = []
        var busy = false
        var statistics = Statistics()
        var workerStarted = false
    }

    public let settings: Settings
    private let shared = Mutex(Shared())
    /// Signalled once per queued build-id; the worker waits on it.
    private let wake = DispatchSemaphore(value: 0)

    public init(settings: Settings) { self.settings = settings }

    /// The fetched debug file of `buildID` (lowercase hex), or nil: then it
    /// is queued, unless it is already, or was missed less than `retrySeconds` ago.
    public func debugFile(buildID: String) -> String? {
        let (path, queued, startWorker) = shared.withLock { shared -> (String?, Bool, Bool) in
            switch shared.states[buildID] {
            case .found(let path): return (path, false, false)
            case .queued: return (nil, false, false)
            case .missing(let retryAt) where Self.now() < retryAt: return (nil, false, false)
            case .missing, nil:
                shared.states[buildID] = .queued
                shared.queue.append(buildID)
                defer { shared.workerStarted = true }
                return (nil, true, !shared.workerStarted)
            }
        }
        if startWorker { startWorkerThread() }
        if queued { wake.signal() }
        return path
    }

    /// Whether `buildID` was missed long enough ago to be asked for again.
    public func retryIsDue(buildID: String) -> Bool {
        shared.withLock { shared in
            if case .missing(let retryAt) = shared.states[buildID] { return Self.now() >= retryAt }
            return false
        }
    }

    /// The build-ids whose files arrived since the last call.
    public func takeArrivals() -> [String] {
        shared.withLock { shared in
            defer { shared.arrivals.removeAll() }
            return shared.arrivals
        }
    }

    /// A fetched file that turned out not to be the one asked for: it is not
    /// used, and the build-id is asked for again only after `retrySeconds`.
    public func refuse(buildID: String, why: String) {
        shared.withLock { shared in
            shared.states[buildID] = .missing(retryAt: Self.now() + Double(settings.retrySeconds))
            shared.statistics.fetched -= 1
            shared.statistics.refused += 1
            shared.statistics.lastFailure = why
        }
    }

    public var current: Statistics { shared.withLock { $0.statistics } }

    /// How many build-ids wait for or are in a fetch.
    public var pending: Int { shared.withLock { $0.queue.count + ($0.busy ? 1 : 0) } }

    /// Waits until nothing is queued or fetched, at most `seconds`; true if idle.
    public func waitUntilIdle(seconds: Double) -> Bool {
        let deadline = Self.now() + seconds
        while pending > 0 {
            if Self.now() >= deadline { return false }
            usleep(20_000)
        }
        return true
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    // MARK: The worker

    /// One thread for the fetcher's life: it sleeps on the semaphore while nothing is queued.
    private func startWorkerThread() {
        let thread = Thread { [self] in
            while true {
                wake.wait()
                guard let buildID = shared.withLock({ shared -> String? in
                    guard !shared.queue.isEmpty else { return nil }
                    shared.busy = true
                    return shared.queue.removeFirst()
                }) else { continue }
                let result = fetch(buildID)
                shared.withLock { shared in
                    shared.busy = false
                    switch result {
                    case .success(let path):
                        shared.states[buildID] = .found(path)
                        shared.arrivals.append(buildID)
                        shared.statistics.fetched += 1
                    case .failure(let failure):
                        shared.states[buildID] = .missing(retryAt: Self.now() + Double(settings.retrySeconds))
                        shared.statistics.misses += 1
                        shared.statistics.lastFailure = "debuginfod: \(buildID): \(failure.description)"
                    }
                }
            }
        }
        thread.name = "flare-debuginfod"
        thread.start()
    }

    struct FetchFailure: Error, CustomStringConvertible { let description: String }

    /// Runs the helper for one build-id, with the servers and limits in its
    /// environment only, and kills it at the deadline.
    private func fetch(_ buildID: String) -> Result<String, FetchFailure> {
        guard !buildID.isEmpty, buildID.count <= 128, buildID.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            return .failure(FetchFailure(description: "not a build-id"))
        }
        let environment = [
            "DEBUGINFOD_URLS=\(settings.urls)",
            "DEBUGINFOD_CACHE_PATH=\(settings.cacheDirectory)",
            // Seconds without progress, and in all; bytes before the download starts.
            "DEBUGINFOD_TIMEOUT=\(max(1, settings.timeoutSeconds))",
            "DEBUGINFOD_MAXTIME=\(max(1, settings.timeoutSeconds))",
            "DEBUGINFOD_MAXSIZE=\(max(1, settings.maxBytes))",
            "PATH=/usr/bin:/bin",
        ]
        let output: String
        switch HelperProcess.run(settings.helper + [buildID], environment: environment, seconds: Double(settings.timeoutSeconds) + 2) {
        case .failure(let failure): return .failure(FetchFailure(description: failure.description))
        case .success(let text): output = text
        }
        let path = output.split(separator: "\n").first.map(String.init) ?? ""
        guard path.hasPrefix(settings.cacheDirectory) else {
            return .failure(FetchFailure(description: "the helper answered \(TerminalText.safe(path, maxLength: 200))"))
        }
        return .success(path)
    }
}

/// One child process with a deadline: its standard output, or why it failed.
enum HelperProcess {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func run(_ argv: [String], environment: [String], seconds: Double, maxOutput: Int = 64 << 10) -> Result<String, Failure> {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { return .failure(Failure(description: "pipe: \(String(cString: strerror(errno)))")) }
        // Not inherited by other children the agent starts meanwhile (the child gets them through dup2).
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var pid: pid_t = 0
        let spawned = withCStrings(argv) { args in
            withCStrings(environment) { env in posix_spawn(&pid, argv[0], &actions, nil, args, env) }
        }
        close(pipeFDs[1])
        guard spawned == 0 else {
            close(pipeFDs[0])
            return .failure(Failure(description: "cannot run \(argv[0]): \(String(cString: strerror(spawned)))"))
        }
        var output: [UInt8] = []
        let deadline = DebuginfodFetcher.now() + seconds
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline - DebuginfodFetcher.now()
            if left <= 0 { timedOut = true; break }
            var poller = pollfd(fd: pipeFDs[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(left, 1) * 1000) + 1)
            if ready < 0 && errno != EINTR { break }
            if ready <= 0 { continue }
            let count = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if count <= 0 { break }
            if output.count < maxOutput { output += buffer[0..<min(count, maxOutput - output.count)] }
        }
        close(pipeFDs[0])
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = String(decoding: output, as: UTF8.self)
        if timedOut { return .failure(Failure(description: "no answer within \(Int(seconds)) s")) }
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            let said = text.split(separator: "\n").last.map(String.init) ?? "exit status \(status)"
            return .failure(Failure(description: TerminalText.safe(said, maxLength: 200)))
        }
        return .success(text)
    }

    private static func withCStrings<T>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }
}
