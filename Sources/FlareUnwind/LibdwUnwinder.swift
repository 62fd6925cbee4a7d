import CDwflUnwind
import FlareProcesses
import FlareSampler
import FlareTargetFiles
import Glibc

/// The slow path: libdw's own unwinder (`dwfl_getthread_frames`) over the
/// sample's registers and stack copy, for CFI rules the compact tables cannot
/// express — DWARF expressions and signal frames. Rare (libc has 7 such rows),
/// so one `Dwfl` per process is built on first need and rebuilt only when the
/// process's mappings change.
public final class LibdwUnwinder {
    private struct Walker {
        weak var process: ProcessState?
        let mappingsVersion: Int
        let handle: OpaquePointer?
        var lastUse: UInt64
    }

    private var walkers: [Int32: Walker] = [:]
    private var uses: UInt64 = 0
    private let locator: FileLocator
    /// Processes whose Dwfl is kept at once; each holds every module of its process open.
    private let capacity: Int

    public init(locator: FileLocator, capacity: Int = 8) {
        self.locator = locator
        self.capacity = max(1, capacity)
    }

    deinit {
        for walker in walkers.values { cdwfl_walker_destroy(walker.handle) }
    }

    /// The whole user stack, unwound by libdw from the sample's registers; nil
    /// when libdw cannot be set up for this process.
    func unwind(registers: [UInt64], stack: [UInt8], process: ProcessState, maxDepth: Int) -> UnwoundStack? {
        guard let handle = walker(for: process) else { return nil }
        var dwarfRegisters = Self.dwarfRegisters(registers)
        var pcs = [UInt64](repeating: 0, count: maxDepth)
        var exact = [UInt8](repeating: 0, count: maxDepth)
        var count = 0
        let status = stack.withUnsafeBufferPointer { copy in
            cdwfl_walker_unwind(handle, &dwarfRegisters, copy.baseAddress, copy.count, &pcs, &exact, maxDepth, &count)
        }
        var frames: [UnwoundFrame] = []
        frames.reserveCapacity(count)
        for index in 0..<count {
            frames.append(UnwoundFrame(address: pcs[index], isKernel: false, isReturnAddress: exact[index] == 0))
        }
        switch status {
        case CDWFL_COMPLETE: return UnwoundStack(frames: frames)
        case CDWFL_DEPTH_LIMIT: return UnwoundStack(frames: frames, truncation: .depthLimit)
        case CDWFL_STACK_COPY_TOO_SMALL: return UnwoundStack(frames: frames, truncation: .stackCopyTooSmall)
        default: return UnwoundStack(frames: frames, truncation: .unsupportedCFI)
        }
    }

    /// perf's x86-64 user registers (mask 0xff0fff order) as libdw's DWARF numbering.
    static func dwarfRegisters(_ perf: [UInt64]) -> [UInt64] {
        // DWARF: rax rdx rcx rbx rsi rdi rbp rsp r8..r15, then the pc; perf: AX BX CX DX SI DI BP SP IP … R8..R15.
        let perfOrder = [0, 3, 2, 1, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23, 8]
        return perfOrder.map { perfIndex in UserRegisters.index(ofPerfRegister: perfIndex).map { perf[$0] } ?? 0 }
    }

    private func walker(for process: ProcessState) -> OpaquePointer? {
        uses += 1
        if let existing = walkers[process.pid], existing.process === process,
           existing.mappingsVersion == process.mappingsVersion {
            walkers[process.pid]?.lastUse = uses
            return existing.handle
        }
        if let stale = walkers.removeValue(forKey: process.pid) { cdwfl_walker_destroy(stale.handle) }
        evictIfFull()
        let handle = Self.makeWalker(for: process, locator: locator)
        walkers[process.pid] = Walker(process: process, mappingsVersion: process.mappingsVersion, handle: handle, lastUse: uses)
        return handle
    }

    /// Drops the least recently used walker, and any whose process has gone.
    private func evictIfFull() {
        for (pid, walker) in walkers where walker.process == nil || walker.process?.hasExited == true {
            cdwfl_walker_destroy(walker.handle)
            walkers[pid] = nil
        }
        guard walkers.count >= capacity, let oldest = walkers.min(by: { $0.value.lastUse < $1.value.lastUse }) else { return }
        cdwfl_walker_destroy(oldest.value.handle)
        walkers[oldest.key] = nil
    }

    /// A Dwfl holding each file-backed mapping's ELF at its load bias.
    private static func makeWalker(for process: ProcessState, locator: FileLocator) -> OpaquePointer? {
        guard let handle = cdwfl_walker_create(process.pid) else { return nil }
        var reported = Set<String>()
        let rules = locator.rules(pid: process.pid)
        for mapping in process.mappings where mapping.isFileBacked && !reported.contains(mapping.filePath) {
            for candidate in locator.candidates(for: mapping, pid: process.pid) {
                // libdw opens what it is given: give it the file opened under the rules.
                guard case .success(let file) = TargetFiles.open(candidate, rules) else { continue }
                defer { close(file.fd) }
                let path = "/proc/self/fd/\(file.fd)"
                var bias: UInt64 = 0
                guard cdwfl_load_bias(path, mapping.start, mapping.fileOffset, &bias) == 0 else { continue }
                if cdwfl_walker_report(handle, path, bias) == 0 { reported.insert(mapping.filePath) }
                break
            }
        }
        guard !reported.isEmpty, cdwfl_walker_ready(handle) == 0 else {
            cdwfl_walker_destroy(handle)
            return nil
        }
        return handle
    }
}
