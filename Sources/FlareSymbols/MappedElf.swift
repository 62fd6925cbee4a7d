import CElfutils
import FlareTargetFiles
import Glibc

/// An ELF file kept open for lookups over a long time (unwind rules, DWARF
/// lines), read through libelf's read-only mapping of the whole file.
///
/// Every page a lookup touches stays resident and counts against the agent's
/// memory, so `releasePages()` hands them back: the mapping is private,
/// read-only and file-backed, so dropping its pages loses nothing and the next
/// read faults them back in from the page cache.
public final class MappedElf {
    public let elf: OpaquePointer
    private let fd: Int32
    /// The mapped file, when libelf did map it (it falls back to reading
    /// into the heap when a file cannot be mapped; those pages are never dropped).
    private let mapped: UnsafeMutableRawBufferPointer?
    /// The mapping's slot in `TruncationGuard`: the file is the target's, and
    /// may be truncated under us.
    private let guardSlot: Int32?

    private static let libelfReady: Bool = elf_version(UInt32(EV_CURRENT)) != UInt32(EV_NONE)

    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Opens the file at `path` under `rules` (docs/security.md).
    public init(path: String, rules: TargetFiles.Options = TargetFiles.Options()) throws(OpenError) {
        guard Self.libelfReady else { throw OpenError(description: "libelf version mismatch") }
        let fd: Int32
        switch TargetFiles.open(path, rules) {
        case .success(let file): fd = file.fd
        case .failure(let failure): throw OpenError(description: failure.description)
        }
        guard let elf = elf_begin(fd, ELF_C_READ_MMAP, nil) else {
            close(fd)
            throw OpenError(description: "\(path): not an ELF file")
        }
        guard elf_kind(elf) == ELF_K_ELF else {
            // libelf opens any file (an archive, plain text): release what it mapped.
            elf_end(elf)
            close(fd)
            throw OpenError(description: "\(path): not an ELF file")
        }
        self.fd = fd
        self.elf = elf
        mapped = Self.fileMapping(of: elf, fd: fd)
        guardSlot = mapped.flatMap { mapping in mapping.baseAddress.flatMap { TruncationGuard.guardMapping($0, count: mapping.count) } }
    }

    deinit {
        if let guardSlot { TruncationGuard.release(guardSlot) }
        elf_end(elf)
        close(fd)
    }

    /// Drops the resident pages of the file's mapping.
    public func releasePages() {
        guard let mapped, let base = mapped.baseAddress else { return }
        madvise(base, mapped.count, MADV_DONTNEED)
    }

    /// Runs `body` with the page holding the ELF header writable, so that
    /// libelf's update calls may change this process's private view of it
    /// (never the file; the page goes back to the file's bytes at the next
    /// `releasePages()`). Only that page is made writable: a whole writable
    /// private mapping would be charged in full against a strict overcommit
    /// limit. Nil, without running `body`, when libelf did not map the file.
    public func withWritableHeader<T>(_ body: () -> T) -> T? {
        guard let mapped, let base = mapped.baseAddress else { return nil }
        let page = min(mapped.count, sysconf(Int32(_SC_PAGESIZE)))
        guard mprotect(base, page, PROT_READ | PROT_WRITE) == 0 else { return nil }
        defer { mprotect(base, page, PROT_READ) }
        return body()
    }

    /// libelf's mapping of the file, if the whole file is mapped from `fd`:
    /// checked against /proc/self/maps, so that heap memory is never mistaken for it.
    private static func fileMapping(of elf: OpaquePointer, fd: Int32) -> UnsafeMutableRawBufferPointer? {
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size > 0 else { return nil }
        // elf_getbase is 0 for a file read from its start; elf_rawfile then
        // returns libelf's mapping (or, unmapped, a heap copy it makes now).
        guard elf_getbase(elf) == 0 else { return nil }
        var size = 0
        guard let raw = elf_rawfile(elf, &size), size > 0 else { return nil }
        let address = UInt(bitPattern: raw)
        guard address % UInt(sysconf(Int32(_SC_PAGESIZE))) == 0,
              let maps = fopen("/proc/self/maps", "re") else { return nil }
        defer { fclose(maps) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), maps) != nil {
            // "start-end perms offset dev inode path"
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let parts = text.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard parts.count >= 5 else { continue }
            let range = parts[0].split(separator: "-")
            guard range.count == 2, UInt(range[0], radix: 16) == address else { continue }
            let end = UInt(range[1], radix: 16) ?? 0
            guard UInt(parts[2], radix: 16) == 0, UInt(parts[4]) == UInt(info.st_ino), end - address >= UInt(size) else { return nil }
            return UnsafeMutableRawBufferPointer(start: raw, count: size)
        }
        return nil
    }
}
