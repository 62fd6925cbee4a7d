import FlareTargetFiles
import Glibc

/// Names for addresses, with the parsed files cached so that a library mapped
/// by many processes is read once: by identity (build-id, or device, inode and
/// path) and then by build-id across paths.
public final class Symbolizer {
    private var imagesByIdentity: [String: ElfImage?] = [:]
    private var imagesByBuildID: [[UInt8]: ElfImage] = [:]
    private var kernelSymbols: KernelSymbols?
    private var demangled: [String: String] = [:]
    private let kallsymsPath: String
    /// Files that could not be opened, with the reason, for the summary.
    public private(set) var failures: [String: String] = [:]

    /// Where separate debug files live (Debian's -dbg and -dbgsym packages).
    private let debugRoot: String

    /// Whether inlined calls become frames of their own (perf's --no-inline turns that off).
    private let expandInlines: Bool

    /// Files whose DWARF is larger are named from their ELF symbols only.
    private let maxDebugInfoBytes: Int

    /// - Parameter maxDebugInfoBytes: the largest DWARF (all `.debug_*`
    ///   sections, uncompressed) read for lines and inlined calls: libdw holds
    ///   two to three times that while a file is open, and an always-on agent
    ///   must not grow by a large server binary's tens of megabytes.
    public init(kallsymsPath: String = "/proc/kallsyms", debugRoot: String = "/usr/lib/debug", expandInlines: Bool = true,
                maxDebugInfoBytes: Int = .max) {
        self.kallsymsPath = kallsymsPath
        self.debugRoot = debugRoot
        self.expandInlines = expandInlines
        self.maxDebugInfoBytes = maxDebugInfoBytes
    }

    /// Advanced by the owner (the agent: once per window). Files are stamped
    /// with it when used, and `evict` is given those stamped longest ago.
    public var clock = 0

    /// An estimate of the memory the caches hold: symbol tables, frames
    /// found, and for each file whose DWARF libdw has open the size of its
    /// debug sections (what libdw holds lives inside it, where it cannot be counted).
    public var memoryBytes: Int {
        cachedFiles.reduce(0) { $0 + $1.bytes } + demangled.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 32 }
    }

    /// Each open file with what it holds: its symbols, its DWARF and the frames found in it.
    public var cachedFiles: [CachedFile] {
        var images: [ObjectIdentifier: ElfImage] = [:]
        for case let image? in imagesByIdentity.values { images[ObjectIdentifier(image)] = image }
        return images.map { id, image in
            CachedFile(key: Self.key(id), lastUse: image.lastUse,
                       bytes: image.memoryBytes + (sourceLines[id]??.debugBytes ?? 0) + (framesBytes[id] ?? 0)
                           + (functionStarts[id]??.memoryBytes ?? 0))
        }
    }

    private static func key(_ id: ObjectIdentifier) -> String { "elf:" + String(UInt(bitPattern: id), radix: 16) }

    /// Forgets the files named by `cachedFiles` keys: the next use opens them
    /// again. Files that failed to open are retried too, and the demangling
    /// memo starts afresh.
    public func evict(_ keys: Set<String>) {
        guard !keys.isEmpty else { return }
        var gone = Set<ObjectIdentifier>()
        for case let image? in imagesByIdentity.values where keys.contains(Self.key(ObjectIdentifier(image))) {
            gone.insert(ObjectIdentifier(image))
        }
        imagesByIdentity = imagesByIdentity.filter { $0.value.map { !gone.contains(ObjectIdentifier($0)) } ?? false }
        imagesByBuildID = imagesByBuildID.filter { !gone.contains(ObjectIdentifier($0.value)) }
        for id in gone {
            sourceLines[id] = nil
            framesBytes[id] = nil
            functionStarts[id] = nil
        }
        knownFrames = knownFrames.filter { !gone.contains($0.key.image) }
        awaitingDebugInfo = awaitingDebugInfo.compactMapValues { images in
            let kept = images.filter { !gone.contains(ObjectIdentifier($0)) }
            return kept.isEmpty ? nil : kept
        }
        demangled.removeAll()
    }

    /// The parsed ELF for a mapping, trying each candidate path in turn (a
    /// deleted file is still reachable through /proc/PID/map_files while the
    /// process lives; a container's files through /proc/PID/root).
    public func image(identity: String, candidates: [String], rules: TargetFiles.Options = TargetFiles.Options()) -> ElfImage? {
        if let cached = imagesByIdentity[identity] {
            cached?.lastUse = clock
            return cached
        }
        var opened: ElfImage?
        var openedPath = ""
        var lastError = "no path to open"
        for path in candidates {
            do {
                opened = try ElfImage(path: path, rules: rules)
                openedPath = path
                break
            } catch {
                lastError = error.description
            }
        }
        if let image = opened {
            // Beside the file opened (a --symfs copy, a container's root), unless
            // that is a /proc/PID/map_files alias: then beside the mapped path in the process's root.
            image.originalPath = TargetFiles.isMapFilesAlias(openedPath) ? candidates.first { !TargetFiles.isMapFilesAlias($0) } : openedPath
            if let id = image.buildID {
                if let shared = imagesByBuildID[id] { opened = shared } else { imagesByBuildID[id] = image }
            }
        }
        if opened == nil, let first = candidates.last { failures[first] = lastError }
        opened?.lastUse = clock
        imagesByIdentity[identity] = opened
        return opened
    }

    private var sourceLines: [ObjectIdentifier: SourceLines?] = [:]

    /// The frames at a file offset of `image`, innermost inlined call first:
    /// DWARF names, files and lines where debug info exists (in the file or a
    /// separate debug file), with the physical function named by its ELF
    /// symbol, as perf names it; nil if nothing names the address. Answers
    /// are kept: every window asks again for the frames it holds.
    public func frames(in image: ElfImage, fileOffset: UInt64) -> [SourceFrame]? {
        image.lastUse = clock
        let key = FrameAddress(image: ObjectIdentifier(image), fileOffset: fileOffset)
        if let known = knownFrames[key] { return known }
        let found = lookUpFrames(in: image, fileOffset: fileOffset)
        knownFrames[key] = found
        framesBytes[key.image, default: 0] += 48 + (found?.reduce(0) { $0 + 48 + $1.function.utf8.count + $1.file.utf8.count } ?? 0)
        return found
    }

    private struct FrameAddress: Hashable {
        let image: ObjectIdentifier
        let fileOffset: UInt64
    }
    private var knownFrames: [FrameAddress: [SourceFrame]?] = [:]
    private var framesBytes: [ObjectIdentifier: Int] = [:]

    private func lookUpFrames(in image: ElfImage, fileOffset: UInt64) -> [SourceFrame]? {
        let symbol = function(in: image, fileOffset: fileOffset)
        guard let lines = debugInfo(for: image), var frames = lines.frames(at: image.virtualAddress(fileOffset: fileOffset)) else {
            return symbol.map { [SourceFrame(function: $0, file: "", line: 0)] }
        }
        if !expandInlines { frames = [frames[frames.count - 1]] }
        for i in frames.indices { frames[i].function = demangle(frames[i].function) }
        if let symbol { frames[frames.count - 1].function = symbol }
        if frames.contains(where: { $0.function.isEmpty }) {
            guard symbol != nil else { return nil }
            frames = frames.filter { !$0.function.isEmpty }
        }
        return frames.isEmpty ? nil : frames
    }

    private func debugInfo(for image: ElfImage) -> SourceLines? {
        let key = ObjectIdentifier(image)
        if let cached = sourceLines[key] { return cached }
        // The image's own descriptor reaches the file even if it was deleted or replaced.
        var lines = SourceLines(path: image.openPath, maxDebugBytes: maxDebugInfoBytes)
        if lines == nil {
            let locator = DebugInfoLocator(root: debugRoot)
            for (path, rules) in locator.candidates(for: image, originalPath: image.originalPath) {
                if let found = SourceLines(path: path, rules: rules, maxDebugBytes: maxDebugInfoBytes) { lines = found; break }
            }
        }
        if lines == nil, let fetched = fetchedDebugFile(for: image), let rules = fetchedFileRules {
            lines = SourceLines(path: fetched, rules: rules, maxDebugBytes: maxDebugInfoBytes)
        }
        sourceLines[key] = lines
        return lines
    }

    // MARK: debuginfod

    /// Where debug files missing on the host come from; nil: nowhere.
    public var debuginfod: DebuginfodFetcher?
    /// Images named without a debug file while theirs was being fetched, by build-id.
    private var awaitingDebugInfo: [String: [ElfImage]] = [:]
    /// Fetched debug files checked against their build-id, by build-id.
    private var verifiedDebugFiles: [String: String] = [:]
    /// Fetched files are opened only inside the cache, and no bigger than the fetch limit.
    private var fetchedFileRules: TargetFiles.Options? {
        debuginfod.map { TargetFiles.Options(maxBytes: Int64($0.settings.maxBytes), beneath: $0.settings.cacheDirectory) }
    }

    /// The debug file a debuginfod server gave for `image`, once it is there
    /// and carries the image's build-id; nil before (the image is named again
    /// when it arrives) and for images without a build-id.
    private func fetchedDebugFile(for image: ElfImage) -> String? {
        guard let fetcher = debuginfod, let buildID = image.buildID else { return nil }
        let hex = image.buildIDHex
        if let verified = verifiedDebugFiles[hex] { return verified }
        guard let path = fetcher.debugFile(buildID: hex) else {
            if !(awaitingDebugInfo[hex]?.contains { $0 === image } ?? false) { awaitingDebugInfo[hex, default: []].append(image) }
            return nil
        }
        let file: ElfImage
        do { file = try ElfImage(path: path, rules: fetchedFileRules ?? TargetFiles.Options()) } catch {
            fetcher.refuse(buildID: hex, why: "debuginfod gave \(path) for \(hex), which is not ELF: \(error)")
            return nil
        }
        guard file.buildID == buildID else {
            fetcher.refuse(buildID: hex, why: "debuginfod gave \(path) for \(hex), whose build-id is \(file.buildIDHex.isEmpty ? "absent" : file.buildIDHex)")
            return nil
        }
        verifiedDebugFiles[hex] = path
        return path
    }

    /// Names again the images whose debug files arrived since the last call,
    /// and those whose fetch missed long enough ago to be tried again: their
    /// symbols, lines and frames are looked up afresh at their next use.
    /// Returns how many images that was.
    @discardableResult
    public func adoptFetchedDebugInfo() -> Int {
        guard let fetcher = debuginfod else { return 0 }
        var renamed = 0
        for hex in fetcher.takeArrivals() + awaitingDebugInfo.keys.filter({ fetcher.retryIsDue(buildID: $0) }) {
            for image in awaitingDebugInfo.removeValue(forKey: hex) ?? [] {
                let id = ObjectIdentifier(image)
                image.forgetSymbols()
                sourceLines[id] = nil
                framesBytes[id] = nil
                knownFrames = knownFrames.filter { $0.key.image != id }
                renamed += 1
            }
        }
        return renamed
    }

    /// Drops the resident pages of the files kept open for DWARF lookups: they
    /// are read again from the page cache when needed (between windows).
    public func releasePages() {
        for case let lines? in sourceLines.values { lines.releasePages() }
        for case let starts? in functionStarts.values { starts.releasePages() }
    }

    private var functionStarts: [ObjectIdentifier: FunctionStarts?] = [:]

    /// The file offset at which the function covering `fileOffset` starts,
    /// by the file's CFI: how an address no symbol covers is still attributed
    /// to one function (named `file+0xSTART`). Nil where no FDE covers it.
    public func functionStart(in image: ElfImage, fileOffset: UInt64) -> UInt64? {
        let key = ObjectIdentifier(image)
        let starts: FunctionStarts?
        if let cached = functionStarts[key] {
            starts = cached
        } else {
            // The image's own descriptor: the file as mapped, even if deleted or replaced since.
            starts = FunctionStarts(path: image.openPath)
            functionStarts[key] = starts
        }
        return starts?.start(containing: image.virtualAddress(fileOffset: fileOffset)).map(image.fileOffset(virtualAddress:))
    }

    /// Reads the image's symbols on first use, from its separate debug file
    /// when the file itself is stripped of `.symtab`.
    private func prepareSymbols(_ image: ElfImage) {
        guard !image.symbolsAreLoaded else { return }
        guard !image.hasSymtab else { return }
        if let debugFile = DebugInfoLocator(root: debugRoot).find(for: image, originalPath: image.originalPath) {
            image.adoptSymbols(from: debugFile)
        } else if let fetched = fetchedDebugFile(for: image), let rules = fetchedFileRules, let debugFile = try? ElfImage(path: fetched, rules: rules) {
            image.adoptSymbols(from: debugFile)
        }
    }

    /// The demangled function containing a file offset of `image`.
    public func function(in image: ElfImage, fileOffset: UInt64) -> String? {
        image.lastUse = clock
        prepareSymbols(image)
        guard let symbol = image.symbols.lookup(image.virtualAddress(fileOffset: fileOffset)) else { return nil }
        // "name@@GLIBC_2.34": the symbol version is not part of the function's name.
        if let at = symbol.firstIndex(of: "@"), at != symbol.startIndex { return demangle(String(symbol[..<at])) }
        return demangle(symbol)
    }

    /// Each JIT process's perf map: the file as opened while the process lived
    /// (nil if it had none or it was refused), how many bytes were read, and the names.
    private var perfMaps: [Int32: PerfMap] = [:]
    private struct PerfMap {
        var file: TargetFiles.Opened?
        var bytesRead = -1
        var symbols: PerfMapSymbols?
    }
    /// Maps to look at again before their next use: a JIT appends to its map
    /// as it compiles, so a long-lived process's map must be read again once it grew.
    private var perfMapsToCheck = Set<Int32>()
    /// At most this much of a perf map is read (a map is a few MB even for big JITs).
    public var perfMapMaxBytes = 64 << 20
    /// Perf maps refused (not a regular file, someone else's, writable by others) or cut at `perfMapMaxBytes`.
    public private(set) var perfMapsRefused = 0
    public private(set) var perfMapsTruncated = 0

    /// Opens process `pid`'s perf map while it lives: call at its first JIT
    /// frame, so a process that exits before its profile is named keeps its names.
    public func watchPerfMap(pid: Int32) {
        guard perfMaps[pid]?.file == nil else { return }
        perfMaps[pid, default: PerfMap()].file = openPerfMap(pid)
        perfMapsToCheck.insert(pid)
    }

    /// The JIT function at `address` in process `pid`, from its perf map
    /// (`/tmp/perf-PID.map` in the process's own root, for containers).
    public func jitFunction(pid: Int32, address: UInt64) -> String? {
        if perfMaps[pid] == nil { watchPerfMap(pid: pid) }
        if perfMapsToCheck.contains(pid) { loadPerfMap(pid) }
        return perfMaps[pid]?.symbols?.table.lookup(address).map(demangle)
    }

    /// The map as perf accepts one, and stricter (docs/security.md): found in
    /// the process's root with no symlink on the way, a regular file, owned by
    /// the process's user (or root, and then readable by anyone), and writable
    /// by nobody else. The process must be alive: its user is known only then.
    private func openPerfMap(_ pid: Int32) -> TargetFiles.Opened? {
        guard let credentials = TargetCredentials.of(pid: pid) else { return nil }
        let path = "/proc/\(pid)/root/tmp/perf-\(pid).map"
        switch TargetFiles.open(path, TargetFiles.Options(noSymlinks: true, credentials: credentials)) {
        case .failure(let failure):
            // Absent is the common case (not a JIT, or no map yet); anything else is refused.
            if !failure.description.hasSuffix(String(cString: strerror(ENOENT))) {
                perfMapsRefused += 1
                failures["/tmp/perf-\(pid).map"] = failure.description
            }
            return nil
        case .success(let file):
            let ownedRight = file.owner == credentials.uid || (file.owner == 0 && file.mode & 0o004 != 0)
            guard ownedRight, file.mode & 0o022 == 0 else {
                close(file.fd)
                perfMapsRefused += 1
                failures["/tmp/perf-\(pid).map"] = "refused: owned by uid \(file.owner) with mode \(String(file.mode & 0o777, radix: 8)), "
                    + "not the process's user (uid \(credentials.uid)) or writable by others"
                return nil
            }
            return file
        }
    }

    private func loadPerfMap(_ pid: Int32) {
        perfMapsToCheck.remove(pid)
        var map = perfMaps[pid] ?? PerfMap()
        // A map created or replaced since: open it again while the process lives.
        if let fresh = openPerfMap(pid) {
            if let old = map.file { close(old.fd) }
            map.file = fresh
        }
        guard let file = map.file else {
            perfMaps[pid] = map
            return
        }
        var info = stat()
        let size = fstat(file.fd, &info) == 0 ? Int(info.st_size) : map.bytesRead
        if size != map.bytesRead {
            if size > perfMapMaxBytes { perfMapsTruncated += 1 }
            let bytes = TargetFiles.read(fd: file.fd, count: min(size, perfMapMaxBytes))
            // A map that went away or shrank to nothing keeps the names read before.
            if let symbols = PerfMapSymbols(bytes: bytes) { map.symbols = symbols }
            map.bytesRead = size
        }
        perfMaps[pid] = map
    }

    /// Before a window's JIT frames are named: each perf map is checked for growth at its next use.
    public func jitMapsMayHaveGrown() {
        perfMapsToCheck = Set(perfMaps.keys)
    }

    /// Drops what is kept for an exited process (its perf map).
    public func forgetProcess(_ pid: Int32) {
        if let file = perfMaps[pid]?.file { close(file.fd) }
        perfMaps[pid] = nil
        perfMapsToCheck.remove(pid)
    }

    public func kernelFunction(_ address: UInt64) -> String? {
        if kernelSymbols == nil { kernelSymbols = KernelSymbols(path: kallsymsPath) }
        return kernelSymbols?.name(address)
    }

    public func demangle(_ name: String) -> String {
        if let known = demangled[name] { return known }
        let result = Demangler.demangle(name)
        demangled[name] = result
        return result
    }
}

/// One file's share of a cache, so that the symbol and unwind caches, which
/// share one memory budget, can drop the least recently used files first.
public struct CachedFile: Sendable {
    /// What the cache's `evict` takes; the two caches' keys never coincide
    /// (the symbolizer's start with "elf:", file identities do not).
    public let key: String
    /// The cache's clock when the file was last used.
    public let lastUse: Int
    public let bytes: Int

    public init(key: String, lastUse: Int, bytes: Int) {
        self.key = key
        self.lastUse = lastUse
        self.bytes = bytes
    }
}

extension Sequence<CachedFile> {
    /// The files to drop to free `bytes`: least recently used first, and the
    /// larger first among files last used at the same time.
    public func leastRecentlyUsed(freeing bytes: Int) -> [CachedFile] {
        var freed = 0
        var chosen: [CachedFile] = []
        for file in sorted(by: { ($0.lastUse, $1.bytes) < ($1.lastUse, $0.bytes) }) where freed < bytes {
            chosen.append(file)
            freed += file.bytes
        }
        return chosen
    }
}
