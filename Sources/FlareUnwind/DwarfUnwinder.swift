import FlareProcesses
import FlareSampler

/// Unwinds the user stack from the registers and stack copy in each sample,
/// with compiled DWARF CFI tables, falling back to libdw's unwinder for rules
/// the tables cannot express and to frame pointers where a module has no
/// CFI. Kernel frames still come from the kernel's callchain.
public struct DwarfUnwinder: StackUnwinder {
    public let cache: UnwindTableCache
    public let slowPath: LibdwUnwinder
    public let maxDepth: Int
    private var kernelChain = FramePointerUnwinder()

    public init(cache: UnwindTableCache = UnwindTableCache(), maxDepth: Int = 256) {
        self.cache = cache
        self.slowPath = LibdwUnwinder(locator: cache.locator)
        self.maxDepth = maxDepth
    }

    public mutating func unwind(_ sample: SampleRecord, process: ProcessState) -> UnwoundStack {
        let kernelFrames = kernelChain.unwind(sample, process: process).frames.filter(\.isKernel)
        guard sample.userRegisters.count == UserRegisters.count else {
            // No user state: a kernel thread, or frame-pointer sampling.
            return kernelFrames.isEmpty ? kernelChain.unwind(sample, process: process) : UnwoundStack(frames: kernelFrames)
        }
        var stack = unwindUser(registers: sample.userRegisters, stack: sample.userStack, process: process)
        stack.frames.insert(contentsOf: kernelFrames, at: 0)
        return stack
    }

    /// Whether the word on top of the stack, rather than the frame pointer's
    /// return slot, is the leaf's return address: true when the frame-pointer
    /// slot holds the same return address one frame up (the leaf pushed no frame).
    private func looksLikeFramelessLeaf(_ top: UInt64, bp: UInt64?, read: (UInt64) -> UInt64?) -> Bool {
        guard let bp, let viaFramePointer = read(bp &+ 8) else { return true }
        return viaFramePointer != top
    }

    /// Walks the user stack. Every read is bounds-checked against the copy and
    /// the stack pointer must grow at every step, so no input can make it loop.
    func unwindUser(registers: [UInt64], stack: [UInt8], process: ProcessState) -> UnwoundStack {
        stack.withUnsafeBytes { copy in unwindUser(registers: registers, copy: copy, stack: stack, process: process) }
    }

    private func unwindUser(registers: [UInt64], copy: UnsafeRawBufferPointer, stack: [UInt8], process: ProcessState) -> UnwoundStack {
        var pc = registers[UserRegisters.ip]
        var sp = registers[UserRegisters.sp]
        var bp: UInt64? = registers[UserRegisters.bp]
        let stackBase = sp
        var frames: [UnwoundFrame] = []
        frames.reserveCapacity(32)
        // Consecutive frames are mostly in one mapping, often at one row: remember both.
        var mapping: (start: UInt64, end: UInt64, toLinkTime: UInt64, table: UnwindTable?) = (0, 0, 0, nil)
        var lastRow: (start: UInt64, end: UInt64, row: UnwindTable.Row) = (1, 0, .none)

        func read(_ address: UInt64) -> UInt64? {
            guard address >= stackBase, address &- stackBase <= UInt64(copy.count), address &- stackBase + 8 <= UInt64(copy.count) else {
                return nil
            }
            return copy.loadUnaligned(fromByteOffset: Int(address - stackBase), as: UInt64.self)
        }

        while true {
            let isReturnAddress = !frames.isEmpty
            frames.append(UnwoundFrame(address: pc, isKernel: false, isReturnAddress: isReturnAddress))
            if frames.count >= maxDepth { return UnwoundStack(frames: frames, truncation: .depthLimit) }
            let lookup = isReturnAddress ? pc - 1 : pc
            if lookup < mapping.start || lookup >= mapping.end {
                guard let found = process.mapping(containing: lookup) else {
                    return UnwoundStack(frames: frames, truncation: .badFrame)
                }
                let table = cache.table(for: found, pid: process.pid)
                // One mapping lies within one segment: run-time to link-time address is one shift.
                let linkTime = table?.virtualAddress(fileOffset: found.fileOffset(of: lookup)) ?? 0
                mapping = (found.start, found.end, linkTime &- lookup, table)
                lastRow = (1, 0, .none)
            }
            let row: UnwindTable.Row
            if let table = mapping.table {
                let linkTime = lookup &+ mapping.toLinkTime
                if linkTime >= lastRow.start && linkTime < lastRow.end {
                    row = lastRow.row
                } else {
                    let found = table.rowAndRange(at: linkTime)
                    lastRow = (found.start, found.end, found.row)
                    row = found.row
                }
            } else {
                row = .none
            }

            let cfa: UInt64
            var returnAddressSlot: UInt64
            var savedBPSlot: UInt64?
            switch row.kind {
            case .outermost:
                return UnwoundStack(frames: frames)
            case .cfaSP, .cfaBP, .plt:
                let base: UInt64
                switch row.kind {
                case .cfaSP: base = sp
                case .cfaBP:
                    guard let bp else { return UnwoundStack(frames: frames, truncation: .badFrame) }
                    base = bp
                default: base = sp &+ ((pc & 15) >= 11 ? 8 : 0)
                }
                cfa = base &+ UInt64(bitPattern: Int64(row.cfaOffset))
                returnAddressSlot = cfa &+ UInt64(bitPattern: Int64(row.raOffset))
                if row.bpOffset != UnwindTable.Row.unchangedBP {
                    savedBPSlot = cfa &+ UInt64(bitPattern: Int64(row.bpOffset))
                }
            case .none:
                if !isReturnAddress, let top = read(sp), top > 4096, process.mapping(containing: top - 1) != nil,
                   bp.map({ $0 < sp || $0 > sp &+ 4096 }) ?? true || looksLikeFramelessLeaf(top, bp: bp, read: read) {
                    // A leaf without CFI (compilers omit FDEs for nounwind code)
                    // that pushed nothing: its return address is on top of the stack.
                    cfa = sp &+ 8
                    returnAddressSlot = sp
                } else {
                    // No CFI here: trust the frame pointer, as perf does.
                    guard let frame = bp, frame >= sp else { return UnwoundStack(frames: frames, truncation: .noUnwindInfo) }
                    cfa = frame &+ 16
                    returnAddressSlot = frame &+ 8
                    savedBPSlot = frame
                }
            case .unsupported:
                // A signal frame or a DWARF expression: let libdw walk the whole
                // stack, and keep its answer if it got further.
                if let slow = slowPath.unwind(registers: registers, stack: stack, process: process, maxDepth: maxDepth),
                   slow.truncation == nil || slow.frames.count > frames.count {
                    return slow
                }
                return UnwoundStack(frames: frames, truncation: .unsupportedCFI)
            }

            guard cfa > sp else { return UnwoundStack(frames: frames, truncation: .badFrame) }
            guard let returnAddress = read(returnAddressSlot) else {
                return UnwoundStack(frames: frames, truncation: .stackCopyTooSmall)
            }
            if let slot = savedBPSlot {
                guard let saved = read(slot) else { return UnwoundStack(frames: frames, truncation: .stackCopyTooSmall) }
                bp = saved
            }
            if returnAddress == 0 { return UnwoundStack(frames: frames) }
            sp = cfa
            pc = returnAddress
        }
    }
}
