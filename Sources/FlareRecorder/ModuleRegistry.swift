import FlareProcesses
import FlareSymbols

/// A code module frames are attributed to: an ELF file, the kernel, or a
/// region with no file (anonymous memory, JIT code, the vdso).
struct Module {
    enum Kind {
        case elf(ElfImage?)
        case kernel
        /// Anonymous executable memory of one process: JIT code, named by its perf map.
        case jit(pid: Int32)
        /// [vdso] and other named areas without a file.
        case anonymous
        case marker
    }
    let id: Int32
    let kind: Kind
    let path: String
    let displayName: String
    /// Where file offset 0 was mapped in the first process that used it: the
    /// pprof mapping's memory_start, so location addresses stay meaningful.
    let base: UInt64
    var limit: UInt64
}

/// Assigns each distinct module an id, opening ELF files lazily on first use.
struct ModuleRegistry {
    private(set) var modules: [Module] = []
    private var idByIdentity: [String: Int32] = [:]
    let symbolizer: Symbolizer
    let locator: FileLocator

    init(symbolizer: Symbolizer, locator: FileLocator) {
        self.symbolizer = symbolizer
        self.locator = locator
        modules.append(Module(id: 0, kind: .kernel, path: "[kernel.kallsyms]", displayName: "[kernel]", base: 0, limit: 0))
        modules.append(Module(id: 1, kind: .marker, path: "[flare]", displayName: "[flare]", base: 0, limit: 0))
    }

    static let kernelID: Int32 = 0
    /// Frames that mark where an unwind stopped early.
    static let markerID: Int32 = 1

    /// The module of `mapping` in process `pid`.
    mutating func module(for mapping: MappedFile, pid: Int32) -> Int32 {
        let path = mapping.filePath
        let isJIT = mapping.isAnonymous || path.hasPrefix("/memfd:")
        // JIT addresses mean something only within their process.
        let identity = isJIT ? "jit:\(pid)" : mapping.identity
        let base = mapping.start &- mapping.fileOffset
        if let id = idByIdentity[identity] {
            modules[Int(id)].limit = max(modules[Int(id)].limit, mapping.end &- mapping.start &+ mapping.fileOffset &+ modules[Int(id)].base)
            return id
        }
        let id = Int32(modules.count)
        let kind: Module.Kind
        if mapping.isFileBacked {
            let candidates = locator.candidates(for: mapping, pid: pid)
            kind = .elf(symbolizer.image(identity: identity, candidates: candidates, rules: locator.rules(pid: pid)))
        } else {
            kind = isJIT ? .jit(pid: pid) : .anonymous
            // Its perf map is checked against the process's user while it lives.
            if isJIT { symbolizer.watchPerfMap(pid: pid) }
        }
        modules.append(Module(id: id, kind: kind, path: isJIT ? "[jit]" : path,
                              displayName: isJIT ? "[jit]" : mapping.displayName,
                              base: mapping.isFileBacked ? base : 0, limit: mapping.isFileBacked ? mapping.end - mapping.start + mapping.fileOffset + base : 0))
        idByIdentity[identity] = id
        return id
    }

    /// An id for addresses that fall in no known mapping.
    mutating func unknownModule() -> Int32 {
        if let id = idByIdentity["unknown"] { return id }
        let id = Int32(modules.count)
        modules.append(Module(id: id, kind: .anonymous, path: "[unknown]", displayName: "[unknown]", base: 0, limit: 0))
        idByIdentity["unknown"] = id
        return id
    }
}
