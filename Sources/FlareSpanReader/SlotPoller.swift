import FlareContextReader
import FlareSampler
import Glibc

/// Copies the slots of recently sampled threads every half millisecond on its own
/// thread and merges what it sees into each slot's history, so a sample whose
/// read was delayed (the pipeline was busy loading symbols, or descheduled)
/// still finds the transitions its thread's ring has since overwritten.
final class SlotPoller: @unchecked Sendable {
    struct Key: Hashable {
        var pid: Int32
        var address: UInt64
    }

    struct Watched {
        var size: Int
        var ringLength: Int
        var tid: UInt32
        var lastUsed: UInt64
        /// Released by its thread (ABI 1.1): its history is final, nothing to copy.
        var settled = false
    }

    /// What the last owner scan of one mapping saw.
    struct OwnerScan {
        var claimCount: UInt64
        /// Slots admitted for polling, by the generation that was admitted: a
        /// slot is admitted once per claim, so a dead thread's slot is not
        /// polled for ever.
        var admitted: [UInt64: UInt64] = [:]
    }

    /// Guards `watched`, `histories` and `stopping`.
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var watched: [Key: Watched] = [:]
    private var histories: [Key: SlotHistory] = [:]
    private var stopping = false
    /// Publishing processes whose owned slots are watched even before a sample asks.
    private var processes: [Int32: [(start: UInt64, header: SlotsHeader)]] = [:]
    /// Owner scans by mapping start, per process (under the lock: a process
    /// that exec'd starts afresh).
    private var ownerScans: [Int32: [UInt64: OwnerScan]] = [:]
    private var lastOwnerScan: UInt64 = 0
    /// Slots polled at most, so a process with thousands of threads cannot make the poller spin.
    static let maxWatched = 512
    static let ownerScanNanos: UInt64 = 10_000_000

    /// 10 ms per 256 slots watched for new owners: reading every slot header
    /// pins every page of the mappings, so large mappings are scanned less often
    /// (their threads' transitions are still merged at each sample's read).
    /// Call with the lock held.
    private func ownerScanInterval() -> UInt64 {
        let slots = processes.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.header.slotCount } }
        return Self.ownerScanNanos * UInt64(max(1, (slots + 255) / 256))
    }
    private var running = false
    let interval: UInt32
    /// Slots not sampled for this long are no longer polled.
    static let idleNanos: UInt64 = 2_000_000_000

    init(intervalMicroseconds: UInt32 = 500) {
        interval = intervalMicroseconds
        // Priority inheritance: the poller runs real-time, and a reader thread
        // preempted while holding the lock would otherwise stall it for a
        // whole time slice, long enough for a busy thread's ring to wrap.
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_setprotocol(&attributes, Int32(PTHREAD_PRIO_INHERIT))
        pthread_mutex_init(lock, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }

    /// Merges a copy taken by the caller and answers for `sampleTime` from the history.
    func mergeAndLookup(_ key: Key, copy: UnsafeRawBufferPointer, reread: UnsafeRawBufferPointer, tid: UInt32, ringLength: Int,
                        sampleTime: UInt64, now: UInt64) -> SpanLookup {
        withLock {
            let reason = merge(key, copy: copy, reread: reread, tid: tid, ringLength: ringLength)
            watched[key] = Watched(size: copy.count, ringLength: ringLength, tid: tid, lastUsed: now,
                                   settled: histories[key]?.releaseTimeNanos != nil)
            if let reason { return .unknown(reason) }
            return histories[key]?.lookup(sampleTime: sampleTime) ?? .unknown(.slotChanged)
        }
    }

    /// Merges a copy into the slot's history in place (a copy of the history
    /// would copy thousands of entries while the lock is held). Call with the lock held.
    private func merge(_ key: Key, copy: UnsafeRawBufferPointer, reread: UnsafeRawBufferPointer, tid: UInt32, ringLength: Int) -> UnknownReason? {
        histories[key, default: SlotHistory(ownerTID: tid, generation: 0, claimTimeNanos: 0)]
            .merge(copy: copy, reread: reread, tid: tid, ringLength: ringLength)
    }

    /// Watches every newly claimed slot of a publishing process, looking for
    /// claims every 10 ms (reading the slot headers only when the mapping's
    /// claim counter moved, where its writer keeps one).
    func watchProcess(_ pid: Int32, mappings: [(start: UInt64, header: SlotsHeader)]) {
        withLock {
            processes[pid] = mappings
            ownerScans[pid] = nil
            lastOwnerScan = 0
        }
    }

    /// Stops polling a slot (its thread released it or exited).
    func forget(_ key: Key) {
        withLock {
            watched[key] = nil
            histories[key] = nil
        }
    }

    func forgetProcess(_ pid: Int32) {
        withLock {
            watched = watched.filter { $0.key.pid != pid }
            histories = histories.filter { $0.key.pid != pid }
            processes[pid] = nil
            ownerScans[pid] = nil
        }
    }

    /// Starts the polling thread once.
    func start() {
        let shouldStart = withLock { () -> Bool in
            if running { return false }
            running = true
            return true
        }
        guard shouldStart else { return }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let poller = Unmanaged<SlotPoller>.fromOpaque(raw!).takeRetainedValue()
            poller.run()
            return nil
        }, context)
        if rc == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<SlotPoller>.fromOpaque(context).release()
            withLock { running = false }
        }
    }

    func stop() {
        withLock { stopping = true }
    }

    /// Reads the slot headers of each watched process and watches slots
    /// claimed since the last scan.
    private func scanOwners(_ all: [Int32: [(start: UInt64, header: SlotsHeader)]], now: UInt64) {
        let length = SlotsLayout.slotHeaderPrefix
        for (pid, mappings) in all {
            for mapping in mappings {
                var header = [UInt8](repeating: 0, count: SlotsLayout.headerSize)
                guard case .success = header.withUnsafeMutableBytes({ RemoteMemory.read(pid: pid, address: mapping.start, into: $0) }),
                      let current = header.withUnsafeBytes({ try? SlotsHeader($0, mappingSize: mapping.header.totalSize) })
                else {
                    withLock { processes[pid] = nil }
                    break
                }
                var scan = withLock { ownerScans[pid]?[mapping.start] } ?? OwnerScan(claimCount: current.claimCount &- 1)
                if current.countsClaims && scan.claimCount == current.claimCount { continue }
                scan.claimCount = current.claimCount
                let count = mapping.header.slotCount
                let addresses = (0..<count).map { mapping.start &+ mapping.header.slotOffset($0) }
                var headers = [UInt8](repeating: 0, count: count * length)
                let read = headers.withUnsafeMutableBytes { RemoteMemory.readMany(pid: pid, addresses: addresses, length: length, into: $0) }
                guard case .success = read else {
                    withLock { processes[pid] = nil }
                    break
                }
                let claimed: [(Key, UInt32)] = headers.withUnsafeBytes { raw in
                    (0..<count).compactMap { i in
                        guard let slot = SlotHeader(UnsafeRawBufferPointer(rebasing: raw[(i * length)..<((i + 1) * length)])),
                              slot.ownerTID != 0, slot.head > 0, scan.admitted[addresses[i]] != slot.generation
                        else { return nil }
                        scan.admitted[addresses[i]] = slot.generation
                        return (Key(pid: pid, address: addresses[i]), slot.ownerTID)
                    }
                }
                withLock {
                    ownerScans[pid, default: [:]][mapping.start] = scan
                    for (key, tid) in claimed where watched.count < Self.maxWatched || watched[key] != nil {
                        watched[key] = Watched(size: mapping.header.slotSize, ringLength: mapping.header.ringLength, tid: tid, lastUsed: now)
                    }
                }
            }
        }
    }

    /// The poller must run within a few milliseconds even when the machine is
    /// saturated (a 16-entry ring covers ~8 ms of a thread switching spans
    /// 1000 times a second): it asks for the lowest real-time priority, which
    /// it can afford because it sleeps between short polls, else for nice -10.
    private static func raisePriority() {
        var param = sched_param()
        param.sched_priority = 1
        if pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) != 0 {
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, -10)
        }
    }

    private func run() {
        Self.raisePriority()
        var buffer: [UInt8] = []
        var reread = [UInt8](repeating: 0, count: SlotsLayout.slotHeaderPrefix)
        while true {
            let now = Linux.monotonicNanos()
            let scanOwners: [Int32: [(start: UInt64, header: SlotsHeader)]]? = withLock {
                guard now >= lastOwnerScan + ownerScanInterval(), !processes.isEmpty else { return nil }
                lastOwnerScan = now
                return processes
            }
            if let scanOwners { self.scanOwners(scanOwners, now: now) }
            let work: [(Key, Watched)]? = withLock {
                if stopping { return nil }
                // A slot nobody sampled for a while is dropped with its history.
                for (key, slot) in watched where now >= slot.lastUsed + Self.idleNanos {
                    watched[key] = nil
                    histories[key] = nil
                }
                return watched.filter { !$0.value.settled }
            }
            guard let work else { return }
            for (key, slot) in work {
                if buffer.count < slot.size { buffer = [UInt8](repeating: 0, count: slot.size) }
                let copied = buffer.withUnsafeMutableBytes {
                    RemoteMemory.read(pid: key.pid, address: key.address, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<slot.size]))
                }
                let again = reread.withUnsafeMutableBytes { RemoteMemory.read(pid: key.pid, address: key.address, into: $0) }
                guard case .success = copied, case .success = again else {
                    withLock { watched[key] = nil }
                    continue
                }
                buffer.withUnsafeBytes { copy in
                    reread.withUnsafeBytes { second in
                        withLock {
                            _ = merge(key, copy: UnsafeRawBufferPointer(rebasing: copy[0..<slot.size]), reread: second, tid: slot.tid,
                                      ringLength: slot.ringLength)
                            if histories[key]?.releaseTimeNanos != nil { watched[key]?.settled = true }
                        }
                    }
                }
            }
            usleep(interval)
        }
    }
}
