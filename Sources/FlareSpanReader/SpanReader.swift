import FlareContextReader
import FlareSampler
import Glibc

/// Reads the span each sampled thread was serving, from outside the process:
/// finds FLARE_SLOTS and OTEL_CTX in /proc/PID/maps, maps the host tid to the
/// tid the writer used, copies the thread's slot with process_vm_readv and
/// picks the ring entry in force at the sample's own timestamp
/// (docs/context-abi.md, section 3.6).
///
/// Call `lookup` as soon as a sample is drained: the ring only reaches back a
/// few transitions. Per process it caches the mappings (re-scanning maps with
/// a back-off while there are none, and after an exec), whether the process
/// shares the reader's pid namespace, and which slot each thread owns.
public final class SpanReader {
    public private(set) var statistics = SpanReadStatistics()
    /// Also answer with the naive "newest entry" reader, for benchmarks.
    public var comparesWithNewest = false
    private var processes: [Int32: ProcessState] = [:]
    /// When each thread seen being created was created (pid → host tid →
    /// CLOCK_MONOTONIC ns): a slot its tid claimed earlier belongs to a dead
    /// thread that reused it. Per process, so an exited process takes its
    /// threads' entries with it even when their exit records were lost.
    private var threadBirths: [Int32: [Int32: UInt64]] = [:]
    /// Kept after a process exits: the profile is assembled later.
    private var contexts: [Int32: ProcessContext] = [:]
    private var slotBuffer: [UInt8] = []
    private var rereadBuffer = [UInt8](repeating: 0, count: SlotsLayout.slotHeaderPrefix)
    private let now: () -> UInt64
    /// Keeps each sampled thread's slot history between drains.
    private let poller = SlotPoller()
    private var pollerStarted = false
    /// For mappings whose writers stamp times with the TSC.
    private var timestampCounter = TimestampCounterClock()

    /// First and longest wait before /proc/PID/maps is scanned again for a
    /// process that published no mapping yet.
    static let firstRescan: UInt64 = 2_000_000
    static let longestRescan: UInt64 = 200_000_000
    /// After this long without a mapping a process is most likely not
    /// instrumented: rescans slow to `settledRescan`, so that an agent watching
    /// a whole host does not reread every process's maps five times a second.
    static let settlingTime: UInt64 = 10_000_000_000
    static let settledRescan: UInt64 = 2_000_000_000

    public init(clock: @escaping () -> UInt64 = Linux.monotonicNanos) {
        self.now = clock
    }

    deinit { poller.stop() }

    /// Whether any process seen so far publishes thread context: the recorder
    /// drains often only then.
    public var anyProcessPublishes: Bool { statistics.processesWithSlots > 0 }

    /// The span thread `tid` of `pid` ran at CLOCK_MONOTONIC time `sampleTime`.
    public func lookup(pid: Int32, tid: Int32, sampleTime: UInt64) -> SpanLookup {
        lookupBoth(pid: pid, tid: tid, sampleTime: sampleTime).atSampleTime
    }

    /// The ABI's answer and, when `comparesWithNewest`, the naive one.
    public func lookupBoth(pid: Int32, tid: Int32, sampleTime: UInt64) -> (atSampleTime: SpanLookup, newest: SpanLookup?) {
        let result = resolve(pid: pid, tid: tid, sampleTime: sampleTime)
        statistics.count(result.0)
        return result
    }

    /// The process's OpenTelemetry process context, if it published a valid one.
    public func processContext(pid: Int32) -> ProcessContext? {
        contexts[pid]
    }

    /// Every process context read so far, by pid.
    public var processContexts: [Int32: ProcessContext] { contexts }

    /// Forget what is known of a process that exec'd or exited: its mappings are gone.
    public func forgetProcess(_ pid: Int32) {
        processes[pid] = nil
        threadBirths[pid] = nil
        poller.forgetProcess(pid)
    }

    /// Forgets everything about a process, its published resource included
    /// (the agent calls this once an exited process's last window is cut).
    public func dropProcess(_ pid: Int32) {
        forgetProcess(pid)
        contexts[pid] = nil
    }

    /// A thread exited: its tid may be reused, so forget its cached translation and slot.
    public func threadExited(pid: Int32, tid: Int32) {
        threadBirths[pid]?[tid] = nil
        forgetThread(pid: pid, tid: tid)
    }

    /// A thread was created at `time` (the perf FORK record, taken before the
    /// thread first runs): slots its tid claimed before then were a dead
    /// thread's, whose tid this one reuses, and never describe it.
    public func threadStarted(pid: Int32, tid: Int32, time: UInt64) {
        threadBirths[pid, default: [:]][tid] = time
        forgetThread(pid: pid, tid: tid)
    }

    private func forgetThread(pid: Int32, tid: Int32) {
        guard let process = processes[pid] else { return }
        if let nstid = process.namespacedTIDs.removeValue(forKey: tid) {
            process.slotOfThread[nstid] = nil
            process.noSlotUntil[nstid] = nil
        } else if process.sameNamespace == true {
            process.slotOfThread[UInt32(bitPattern: tid)] = nil
            process.noSlotUntil[UInt32(bitPattern: tid)] = nil
        }
    }

    // MARK: - The protocol

    private func resolve(pid: Int32, tid: Int32, sampleTime: UInt64, secondTry: Bool = false) -> (SpanLookup, SpanLookup?) {
        let process = state(of: pid, sampleTime: sampleTime)
        if let invalid = process.invalidReason, process.mappings.isEmpty {
            _ = invalid
            return (.unknown(.badHeader), nil)
        }
        guard !process.mappings.isEmpty else { return (.none(.noMapping), nil) }
        guard let nstid = namespacedTID(process, pid: pid, tid: tid) else { return (.unknown(.threadGone), nil) }

        // Which slot: the cached one if it still names this thread, else a scan.
        var location = process.slotOfThread[nstid]
        let cached = location != nil
        if location == nil {
            if let until = process.noSlotUntil[nstid], sampleTime <= until { return (noSlot(process, pid: pid, tid: tid), nil) }
            switch findSlot(process, pid: pid, nstid: nstid, bornAt: threadBirths[pid]?[tid] ?? 0, sampleTime: sampleTime) {
            case .failure(let reason): return (.unknown(reason), nil)
            case .success(.slot(let found)): location = found
            case .success(.releasedBefore): return (.none(.noSlot), nil)
            case .success(.none):
                // No slot at scan time S >= sample time: the thread published
                // nothing at the sample either (or released it since: "no slot").
                process.noSlotUntil[nstid] = readTime()
                return (noSlot(process, pid: pid, tid: tid), nil)
            }
            process.slotOfThread[nstid] = location
        }
        guard let location else { return (.none(.noSlot), nil) }
        let mapping = process.mappings[location.mapping]
        let address = mapping.start &+ mapping.header.slotOffset(location.slot)
        let size = mapping.header.slotSize
        if slotBuffer.count < size { slotBuffer = [UInt8](repeating: 0, count: size) }

        let readAt = readTime()
        let copied = slotBuffer.withUnsafeMutableBytes { buffer in
            RemoteMemory.read(pid: pid, address: address, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size]))
        }
        let reread = rereadBuffer.withUnsafeMutableBytes { RemoteMemory.read(pid: pid, address: address, into: $0) }
        guard case .success = copied, case .success = reread else {
            process.mappingsNeedRescan = true
            return (.unknown(.readError), nil)
        }
        if readAt > sampleTime { statistics.delay.record(readAt - sampleTime) } else { statistics.delay.record(0) }
        let ring = mapping.header.ringLength
        let writerSampleTime = writerTime(sampleTime, clock: mapping.header.clock, now: readAt)
        let key = SlotPoller.Key(pid: pid, address: address)
        if !pollerStarted {
            poller.start()
            pollerStarted = true
        }
        let answers = slotBuffer.withUnsafeBytes { copy in
            rereadBuffer.withUnsafeBytes { again in
                let slot = UnsafeRawBufferPointer(rebasing: copy[0..<size])
                let answer = poller.mergeAndLookup(key, copy: slot, reread: again, tid: nstid, ringLength: ring,
                                                   sampleTime: writerSampleTime, now: readAt)
                switch answer {
                case .unknown(.slotChanged) where SlotHeader(again)?.belongs(to: nstid) != true, .none(.noSlot):
                    // Another thread claimed the slot, or this one released it before
                    // the sample (and may hold another since): look again next time.
                    process.slotOfThread[nstid] = nil
                default: break
                }
                let newest = comparesWithNewest
                    ? SlotResolver.resolve(copy: slot, reread: again, tid: nstid, ringLength: ring, sampleTime: writerSampleTime, selection: .newest)
                    : nil
                return (answer, newest)
            }
        }
        // The cached slot was released before the sample: the thread may hold another.
        if cached, !secondTry, case .none(.noSlot) = answers.0 { return resolve(pid: pid, tid: tid, sampleTime: sampleTime, secondTry: true) }
        return answers
    }

    private func noSlot(_ process: ProcessState, pid: Int32, tid: Int32) -> SpanLookup {
        if access("/proc/\(pid)/task/\(tid)", F_OK) != 0 { return .unknown(.threadGone) }
        return process.slotIndexes.contains { $0?.overflow == true } ? .unknown(.overflow) : .none(.noSlot)
    }

    private func readTime() -> UInt64 { now() }

    /// A CLOCK_MONOTONIC time in the clock a mapping's writers use.
    private func writerTime(_ monotonic: UInt64, clock: SlotsHeader.Clock, now: UInt64) -> UInt64 {
        switch clock {
        case .monotonic: monotonic
        case .timestampCounter: monotonic == 0 ? 0 : timestampCounter.ticks(atMonotonic: monotonic, now: now)
        }
    }

    /// What a search for a thread's slot found.
    enum SlotSearch {
        /// The slot that described the thread at the sample's time (or the
        /// latest it claimed, which may be after the sample).
        case slot(SlotLocation)
        /// The thread had released its slots before the sample (ABI 1.1).
        case releasedBefore
        case none
    }

    /// Finds the slot that described `nstid` at `sampleTime`. A slot it
    /// released after that time (ABI 1.1) is unambiguous: only the thread that
    /// had the tid then can have released it later. Of the slots that name the
    /// tid as owner, the latest claim wins: several match when a thread died
    /// without releasing and its tid was reused, and a claim older than the
    /// thread itself (`bornAt`) is a dead thread's. Each mapping's slot
    /// headers are read again only when its claim counter moved (or its
    /// writer keeps none).
    private func findSlot(_ process: ProcessState, pid: Int32, nstid: UInt32, bornAt: UInt64, sampleTime: UInt64) -> Result<SlotSearch, UnknownReason> {
        var releasedAfter: (SlotLocation, UInt64)?
        var latestOwned: (SlotLocation, UInt64)?
        var releasedBefore = false
        let now = readTime()
        if process.slotIndexes.count != process.mappings.count {
            process.slotIndexes = Array(repeating: nil, count: process.mappings.count)
        }
        if bornAt != 0, let location = probeSlots(process, pid: pid, nstid: nstid, bornAt: bornAt, sampleTime: sampleTime, now: now) {
            return .success(.slot(location))
        }
        for (m, mapping) in process.mappings.enumerated() {
            guard let index = slotIndex(process, mapping: m, pid: pid) else {
                process.mappingsNeedRescan = true
                return .failure(.readError)
            }
            let born = writerTime(bornAt, clock: mapping.header.clock, now: now)
            let t = writerTime(sampleTime, clock: mapping.header.clock, now: now)
            for candidate in index.slots[nstid] ?? [] where candidate.claimTime >= born {
                let location = SlotLocation(mapping: m, slot: candidate.slot)
                if let release = candidate.releaseTime {
                    // One claimed after the sample and released since is a later thread's: skipped.
                    if release <= t {
                        releasedBefore = true
                    } else if candidate.claimTime <= t, releasedAfter == nil || candidate.claimTime > releasedAfter!.1 {
                        releasedAfter = (location, candidate.claimTime)
                    }
                } else if latestOwned == nil || candidate.claimTime > latestOwned!.1 {
                    latestOwned = (location, candidate.claimTime)
                }
            }
        }
        // An owned slot claimed after the sample answers `claimed_after_sample`.
        if let (location, _) = releasedAfter ?? latestOwned { return .success(.slot(location)) }
        return .success(releasedBefore ? .releasedBefore : .none)
    }

    /// Writers start looking for a free slot at `tid % slot_count`, so a
    /// thread's slot is most often there or just after. For a thread whose
    /// birth was seen, a slot there that it claimed after its birth and held
    /// at the sample is the answer: one thread holds one slot at a time, and
    /// dead threads' claims are older. Spares a read of every slot header.
    private func probeSlots(_ process: ProcessState, pid: Int32, nstid: UInt32, bornAt: UInt64, sampleTime: UInt64, now: UInt64) -> SlotLocation? {
        let length = SlotsLayout.slotScanPrefix
        for (m, mapping) in process.mappings.enumerated() {
            let count = mapping.header.slotCount
            let probes = min(count, Self.probedSlots)
            let slots = (0..<probes).map { (Int(nstid % UInt32(count)) + $0) % count }
            let addresses = slots.map { mapping.start &+ mapping.header.slotOffset($0) }
            var headers = [UInt8](repeating: 0, count: probes * length)
            let read = headers.withUnsafeMutableBytes { RemoteMemory.readMany(pid: pid, addresses: addresses, length: length, into: $0) }
            guard case .success = read else { continue }
            let born = writerTime(bornAt, clock: mapping.header.clock, now: now)
            let t = writerTime(sampleTime, clock: mapping.header.clock, now: now)
            let found: Int? = headers.withUnsafeBytes { all in
                (0..<probes).first { i in
                    guard let slot = SlotHeader(UnsafeRawBufferPointer(rebasing: all[(i * length)..<((i + 1) * length)])),
                          slot.belongs(to: nstid), slot.claimTimeNanos >= born, slot.claimTimeNanos <= t
                    else { return false }
                    return slot.releaseTime(of: nstid).map { $0 > t } ?? (slot.ownerTID == nstid)
                }
            }
            if let found { return SlotLocation(mapping: m, slot: slots[found]) }
        }
        return nil
    }

    static let probedSlots = 8

    /// Mapping `m`'s slot owners, read afresh unless its writer counts claims
    /// and the count has not moved since the last read.
    private func slotIndex(_ process: ProcessState, mapping m: Int, pid: Int32) -> SlotIndex? {
        let mapping = process.mappings[m]
        var bytes = [UInt8](repeating: 0, count: SlotsLayout.headerSize)
        guard case .success = bytes.withUnsafeMutableBytes({ RemoteMemory.read(pid: pid, address: mapping.start, into: $0) }),
              let header = bytes.withUnsafeBytes({ try? SlotsHeader($0, mappingSize: mapping.header.totalSize) }),
              header.slotCount == mapping.header.slotCount, header.slotSize == mapping.header.slotSize
        else { return nil }
        if header.countsClaims, var known = process.slotIndexes[m], known.claimCount == header.claimCount {
            known.overflow = header.overflowCount != 0
            process.slotIndexes[m] = known
            return known
        }
        let count = header.slotCount
        let length = SlotsLayout.slotScanPrefix
        let addresses = (0..<count).map { mapping.start &+ header.slotOffset($0) }
        var headers = [UInt8](repeating: 0, count: count * length)
        let read = headers.withUnsafeMutableBytes { RemoteMemory.readMany(pid: pid, addresses: addresses, length: length, into: $0) }
        guard case .success = read else { return nil }
        var index = SlotIndex(claimCount: header.claimCount, overflow: header.overflowCount != 0)
        headers.withUnsafeBytes { all in
            for i in 0..<count {
                guard let slot = SlotHeader(UnsafeRawBufferPointer(rebasing: all[(i * length)..<((i + 1) * length)])) else { continue }
                if slot.ownerTID != 0 {
                    index.slots[slot.ownerTID, default: []].append(.init(slot: i, claimTime: slot.claimTimeNanos, releaseTime: nil))
                } else if let release = slot.releaseTime(of: slot.releasedTID) {
                    index.slots[slot.releasedTID, default: []].append(.init(slot: i, claimTime: slot.claimTimeNanos, releaseTime: release))
                }
            }
        }
        process.slotIndexes[m] = index
        return index
    }

    private func namespacedTID(_ process: ProcessState, pid: Int32, tid: Int32) -> UInt32? {
        if process.sameNamespace == nil {
            let status = Linux.readFile("/proc/\(pid)/status")
            process.sameNamespace = status.map { (ProcText.nspidDepth(status: $0) ?? 1) == 1 }
        }
        if process.sameNamespace == true { return UInt32(bitPattern: tid) }
        if let cached = process.namespacedTIDs[tid] { return cached }
        guard let status = Linux.readFile("/proc/\(pid)/task/\(tid)/status") else { return nil }
        let nstid = ProcText.innermostNSpid(status: status) ?? UInt32(bitPattern: tid)
        process.namespacedTIDs[tid] = nstid
        return nstid
    }

    // MARK: - Discovery

    private func state(of pid: Int32, sampleTime: UInt64) -> ProcessState {
        let process: ProcessState
        if let known = processes[pid] {
            process = known
        } else {
            process = ProcessState()
            processes[pid] = process
        }
        let current = readTime()
        let due = process.lastScan == 0
            || process.mappingsNeedRescan
            || (process.mappings.isEmpty && process.invalidReason == nil && sampleTime > process.lastScan
                && current >= process.lastScan + process.rescanInterval)
            || (process.context == nil && !process.mappings.isEmpty && current >= process.lastScan + Self.longestRescan)
        // A process with 100 000 mappings makes each scan cost tens of
        // milliseconds: whatever asks for it, a scan that costs more than
        // `cheapScan` waits until scans take at most 1/`scanCostShare` of the
        // time. Cheaper ones keep the rescan schedule, which finds a new
        // mapping within milliseconds.
        let affordable = process.lastScan == 0 || process.scanCost < Self.cheapScan
            || current >= process.lastScan + process.scanCost * Self.scanCostShare
        if due && affordable {
            let started = Linux.monotonicNanos()
            scan(process, pid: pid, at: current)
            process.scanCost = Linux.monotonicNanos() &- started
        }
        return process
    }

    static let scanCostShare: UInt64 = 100
    static let cheapScan: UInt64 = 1_000_000

    private func scan(_ process: ProcessState, pid: Int32, at time: UInt64) {
        let hadSlots = !process.mappings.isEmpty
        if process.firstScan == 0 { process.firstScan = time }
        process.lastScan = time
        process.mappingsNeedRescan = false
        // A process that published its resource is instrumented: its slots
        // appear at the first attach, so keep looking often.
        let longest = process.context != nil ? Self.firstRescan * 2
            : time - process.firstScan >= Self.settlingTime ? Self.settledRescan : Self.longestRescan
        process.rescanInterval = process.rescanInterval == 0 ? Self.firstRescan : min(process.rescanInterval * 2, longest)
        process.slotOfThread = [:]
        process.noSlotUntil = [:]
        process.slotIndexes = []
        guard let maps = Linux.readFile("/proc/\(pid)/maps") else {
            process.mappings = []
            return
        }
        var mappings: [SlotsMapping] = []
        var rejected: [String] = []
        for named in ProcText.mappings(named: SlotsLayout.mappingName, in: maps) {
            var bytes = [UInt8](repeating: 0, count: SlotsLayout.headerSize)
            let read = bytes.withUnsafeMutableBytes { RemoteMemory.read(pid: pid, address: named.start, into: $0) }
            guard case .success = read else {
                rejected.append("FLARE_SLOTS unreadable")
                continue
            }
            switch bytes.withUnsafeBytes({ raw in Result { () throws(SlotsHeaderError) in try SlotsHeader(raw, mappingSize: named.size) } }) {
            case .success(let header): mappings.append(SlotsMapping(start: named.start, header: header))
            case .failure(let error): rejected.append("FLARE_SLOTS \(error)")
            }
        }
        process.mappings = mappings
        if !mappings.isEmpty {
            poller.watchProcess(pid, mappings: mappings.map { ($0.start, $0.header) })
            if !pollerStarted {
                poller.start()
                pollerStarted = true
            }
        }
        if !mappings.isEmpty && !hadSlots && !process.countedAsPublishing {
            process.countedAsPublishing = true
            statistics.processesWithSlots += 1
        }
        if mappings.isEmpty, let reason = rejected.first {
            process.invalidReason = reason
            statistics.skippedProcesses[pid] = reason
        }
        if process.context == nil, let named = ProcText.mappings(named: ProcessContextLayout.mappingName, in: maps).first {
            switch readProcessContext(pid: pid, mapping: named) {
            case .success(let context):
                process.context = context
                contexts[pid] = context
            case .failure(let reason):
                if statistics.skippedProcesses[pid] == nil { statistics.skippedProcesses[pid] = "OTEL_CTX \(reason)" }
            }
        }
    }

    /// OTEL_CTX as section 2.5 reads it: timestamp, header, payload, timestamp again.
    private func readProcessContext(pid: Int32, mapping: ProcText.NamedMapping) -> Result<ProcessContext, ContextFailure> {
        var last = ContextFailure.changing
        for attempt in 0..<3 {
            if attempt > 0 { usleep(200) }
            var header = [UInt8](repeating: 0, count: ProcessContextLayout.headerSize)
            guard case .success = header.withUnsafeMutableBytes({ RemoteMemory.read(pid: pid, address: mapping.start, into: $0) }) else {
                return .failure(.unreadable)
            }
            let parsed: ProcessContextHeader
            switch header.withUnsafeBytes({ raw in Result { () throws(ProcessContextHeader.Failure) in try ProcessContextHeader(raw) } }) {
            case .success(let value): parsed = value
            case .failure(.beingUpdated):
                last = .changing
                continue
            case .failure(let error): return .failure(.invalid("\(error)"))
            }
            var payload = [UInt8](repeating: 0, count: parsed.payloadSize)
            let copied = payload.withUnsafeMutableBytes { RemoteMemory.read(pid: pid, address: parsed.payloadAddress, into: $0) }
            var again = [UInt8](repeating: 0, count: 8)
            guard case .success = again.withUnsafeMutableBytes({ RemoteMemory.read(pid: pid, address: mapping.start + 16, into: $0) }) else {
                return .failure(.unreadable)
            }
            let t2 = again.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            guard t2 == parsed.publishedAt else {
                last = .changing
                continue
            }
            guard case .success = copied else { return .failure(.unreadable) }
            do {
                return .success(try ProcessContext(payload: payload))
            } catch {
                return .failure(.invalid("payload: \(error.reason)"))
            }
        }
        return .failure(last)
    }
}

enum ContextFailure: Error, CustomStringConvertible {
    case unreadable, changing, invalid(String)

    var description: String {
        switch self {
        case .unreadable: "unreadable"
        case .changing: "kept changing while read"
        case .invalid(let why): why
        }
    }
}

struct SlotsMapping {
    var start: UInt64
    var header: SlotsHeader
}

struct SlotLocation {
    var mapping: Int
    var slot: Int
}

/// Which threads own or released which slots of one mapping, as of the
/// mapping's claim counter `claimCount`.
struct SlotIndex {
    struct Candidate {
        var slot: Int
        var claimTime: UInt64
        /// nil while owned.
        var releaseTime: UInt64?
    }

    var claimCount: UInt64
    var overflow: Bool
    var slots: [UInt32: [Candidate]] = [:]
}

final class ProcessState {
    var mappings: [SlotsMapping] = []
    var firstScan: UInt64 = 0
    var lastScan: UInt64 = 0
    var rescanInterval: UInt64 = 0
    /// How long the last scan of /proc/PID/maps took, in nanoseconds.
    var scanCost: UInt64 = 0
    var mappingsNeedRescan = false
    var invalidReason: String?
    var countedAsPublishing = false
    var sameNamespace: Bool?
    var namespacedTIDs: [Int32: UInt32] = [:]
    var slotOfThread: [UInt32: SlotLocation] = [:]
    /// A scan at this time found no slot for the thread: samples up to it need no new scan.
    var noSlotUntil: [UInt32: UInt64] = [:]
    /// Per mapping, its slots' owners as last read.
    var slotIndexes: [SlotIndex?] = []
    var context: ProcessContext?
}
