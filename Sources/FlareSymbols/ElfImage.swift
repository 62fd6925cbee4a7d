import CElfutils
import FlareTargetFiles
import Glibc

/// What Flare needs from one ELF file, read with libelf: its build-id, its
/// loadable segments (to turn file offsets into virtual addresses) and its
/// function symbols from `.symtab` and `.dynsym`.
///
/// Opening reads only the headers and keeps the file descriptor, so the file
/// stays readable even if it is deleted or replaced later; the symbol table is
/// read on first use, once recording is over, not while samples wait.
public final class ElfImage: @unchecked Sendable {
    public struct Segment: Sendable {
        public var fileOffset: UInt64
        public var virtualAddress: UInt64
        public var fileSize: UInt64
    }

    public let path: String
    public let buildID: [UInt8]?
    public let segments: [Segment]
    /// The separate debug file's name from `.gnu_debuglink`, if any.
    public let debugLink: String?
    /// The path the process mapped it from (`path` may be a /proc alias):
    /// where `.gnu_debuglink` names are looked up.
    public internal(set) var originalPath: String?
    /// The rules the file was opened under: its debug files are opened under them too.
    public let rules: TargetFiles.Options
    /// Where the symbols came from, when not from this file (separate debug info).
    public private(set) var symbolSource: String?
    /// The symbolizer's clock when the image was last used, for eviction.
    var lastUse = 0
    /// The open file: the same inode whatever happens to the path.
    private let file: OpenFile
    private var fd: Int32 { file.fd }
    private var loaded: (symbols: SymbolTable, hasSymtab: Bool)?

    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    private static let libelfReady: Bool = elf_version(UInt32(EV_CURRENT)) != UInt32(EV_NONE)

    /// Opens the file at `path` under `rules` (docs/security.md: a path a
    /// profiled process names is opened with its credentials, inside its root).
    public init(path: String, rules: TargetFiles.Options = TargetFiles.Options()) throws(OpenError) {
        guard Self.libelfReady else { throw OpenError(description: "libelf version mismatch") }
        let fd: Int32
        switch TargetFiles.open(path, rules) {
        case .success(let file): fd = file.fd
        case .failure(let failure): throw OpenError(description: failure.description)
        }
        self.rules = rules
        guard let elf = elf_begin(fd, ELF_C_READ_MMAP, nil) else {
            close(fd)
            throw OpenError(description: "\(path): not readable as ELF")
        }
        defer { elf_end(elf) }
        guard elf_kind(elf) == ELF_K_ELF else {
            close(fd)
            throw OpenError(description: "\(path): not an ELF file")
        }
        self.path = path
        self.file = OpenFile(fd: fd)

        var idPointer: UnsafeRawPointer?
        let idLength = dwelf_elf_gnu_build_id(elf, &idPointer)
        if idLength > 0, let idPointer {
            buildID = Array(UnsafeRawBufferPointer(start: idPointer, count: Int(idLength)))
        } else {
            buildID = nil
        }

        segments = Self.loadSegments(elf)
        debugLink = Self.debugLink(elf).flatMap { $0.isEmpty || $0.contains("/") ? nil : $0 }
    }

    /// A path that opens this very file while the image lives.
    public var openPath: String { "/proc/self/fd/\(fd)" }

    public var symbols: SymbolTable { loadedSymbols().symbols }
    public var hasSymtab: Bool { loadedSymbols().hasSymtab }
    var symbolsAreLoaded: Bool { loaded != nil }

    /// Bytes held by the loaded symbol table (zero until first used).
    public var memoryBytes: Int { loaded?.symbols.memoryBytes ?? 0 }

    private func loadedSymbols() -> (symbols: SymbolTable, hasSymtab: Bool) {
        if let loaded { return loaded }
        let read = Self.readSymbols(file)
        loaded = read
        return read
    }

    private static func debugLink(_ elf: OpaquePointer) -> String? {
        var stringsIndex = 0
        guard elf_getshdrstrndx(elf, &stringsIndex) == 0 else { return nil }
        var section = elf_nextscn(elf, nil)
        while let scn = section {
            defer { section = elf_nextscn(elf, scn) }
            var header = GElf_Shdr()
            if gelf_getshdr(scn, &header) != nil, let name = elf_strptr(elf, stringsIndex, Int(header.sh_name)),
               strcmp(name, ".gnu_debuglink") == 0, let data = elf_getdata(scn, nil), let bytes = data.pointee.d_buf,
               data.pointee.d_size > 4 {
                let raw = UnsafeRawBufferPointer(start: bytes, count: data.pointee.d_size)
                return String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        return nil
    }

    /// Function symbols of `.symtab` and `.dynsym`. In a 64-bit little-endian
    /// file (every x86-64 one) the tables are read in chunks and names left in
    /// the file, so that neither the symbol table nor the string table becomes
    /// resident: a large binary has megabytes of each.
    private static func readSymbols(_ file: OpenFile) -> (symbols: SymbolTable, hasSymtab: Bool) {
        guard let elf = elf_begin(file.fd, ELF_C_READ_MMAP, nil) else { return (SymbolTable(SymbolTable.Builder()), false) }
        defer { elf_end(elf) }
        var info = stat()
        let inPlace = fstat(file.fd, &info) == 0 && info.st_size < off_t(UInt32.max) && isNative64(elf)
        var collected = inPlace ? SymbolTable.Builder(namesIn: file) : SymbolTable.Builder()
        var sawSymtab = false
        var section = elf_nextscn(elf, nil)
        while let scn = section {
            defer { section = elf_nextscn(elf, scn) }
            var header = GElf_Shdr()
            guard gelf_getshdr(scn, &header) != nil,
                  header.sh_type == UInt32(SHT_SYMTAB) || header.sh_type == UInt32(SHT_DYNSYM), header.sh_entsize > 0 else { continue }
            if header.sh_type == UInt32(SHT_SYMTAB) { sawSymtab = true }
            if inPlace {
                guard let strings = plainStringTable(elf, index: Int(header.sh_link)), header.sh_entsize == 24 else { continue }
                readSymbolsInPlace(file, header: header, strings: strings, into: &collected)
            } else {
                readSymbolsCopying(elf, scn, header: header, into: &collected)
            }
        }
        return (SymbolTable(collected), sawSymtab)
    }

    /// Whether libelf reads this file without conversion: ELF64, little-endian.
    private static func isNative64(_ elf: OpaquePointer) -> Bool {
        var size = 0
        guard let ident = elf_getident(elf, &size), size > Int(EI_DATA) else { return false }
        return ident[Int(EI_CLASS)] == CChar(ELFCLASS64) && ident[Int(EI_DATA)] == CChar(ELFDATA2LSB)
    }

    /// The file range of a string table stored plainly (not compressed).
    private static func plainStringTable(_ elf: OpaquePointer, index: Int) -> (offset: UInt64, size: UInt64)? {
        var strings = GElf_Shdr()
        guard let section = elf_getscn(elf, index), gelf_getshdr(section, &strings) != nil,
              strings.sh_type == UInt32(SHT_STRTAB), strings.sh_flags & UInt64(SHF_COMPRESSED) == 0,
              strings.sh_offset < UInt64(UInt32.max), strings.sh_size < UInt64(UInt32.max) - strings.sh_offset else { return nil }
        return (strings.sh_offset, strings.sh_size)
    }

    /// Elf64_Sym entries read with pread, 64 KiB at a time: st_name (4),
    /// st_info (1), st_other (1), st_shndx (2), st_value (8), st_size (8).
    private static func readSymbolsInPlace(_ file: OpenFile, header: GElf_Shdr, strings: (offset: UInt64, size: UInt64),
                                           into collected: inout SymbolTable.Builder) {
        let entrySize = 24
        var chunk = [UInt8](repeating: 0, count: entrySize * 2730)
        var offset = header.sh_offset
        // A hostile section header may point anywhere: only where pread's offset reaches.
        let (end, overflow) = header.sh_offset.addingReportingOverflow(header.sh_size)
        guard !overflow, end <= UInt64(Int64.max) else { return }
        while offset < end {
            let wanted = Int(min(UInt64(chunk.count), end - offset))
            let read = chunk.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress, wanted, off_t(offset)) }
            guard read >= entrySize else { return }
            chunk.withUnsafeBytes { bytes in
                for at in stride(from: 0, through: read - entrySize, by: entrySize) {
                    let name = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                    let info = bytes[at + 4]
                    let sectionIndex = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 6, as: UInt16.self))
                    let value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self))
                    let size = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 16, as: UInt64.self))
                    let type = Int32(info & 0xf)
                    guard type == STT_FUNC || type == STT_GNU_IFUNC, sectionIndex != UInt16(SHN_UNDEF), value != 0,
                          UInt64(name) < strings.size else { continue }
                    collected.add(start: value, size: size, nameAt: UInt32(strings.offset + UInt64(name)), binding: binding(info >> 4))
                }
            }
            offset += UInt64(read - read % entrySize)
        }
    }

    /// Any other ELF: through libelf, names copied.
    private static func readSymbolsCopying(_ elf: OpaquePointer, _ scn: OpaquePointer, header: GElf_Shdr, into collected: inout SymbolTable.Builder) {
        guard let data = elf_getdata(scn, nil) else { return }
        let symbolCount = Int(header.sh_size / header.sh_entsize)
        for index in 0..<symbolCount {
            var symbol = GElf_Sym()
            guard gelf_getsym(data, Int32(index), &symbol) != nil else { continue }
            let type = Int32(symbol.st_info & 0xf)
            guard type == STT_FUNC || type == STT_GNU_IFUNC, symbol.st_shndx != UInt16(SHN_UNDEF), symbol.st_value != 0,
                  let name = elf_strptr(elf, Int(header.sh_link), Int(symbol.st_name)) else { continue }
            collected.add(start: symbol.st_value, size: symbol.st_size, name: UnsafeRawBufferPointer(start: name, count: strlen(name)),
                          binding: binding(symbol.st_info >> 4))
        }
    }

    /// Takes the symbols of this file's separate debug file (same link-time
    /// addresses), which has the full `.symtab` a stripped file lacks.
    /// Forgets the symbols read so far: the next use reads them again (a debug file arrived).
    func forgetSymbols() {
        loaded = nil
        symbolSource = nil
    }

    func adoptSymbols(from debugFile: ElfImage) {
        guard debugFile.symbols.count > symbols.count else { return }
        loaded = (debugFile.symbols, debugFile.hasSymtab)
        symbolSource = debugFile.path
    }

    static func binding(_ value: UInt8) -> SymbolTable.Builder.Binding {
        switch Int32(value) {
        case STB_GLOBAL: .global
        case STB_WEAK: .weak
        default: .local
        }
    }

    /// The link-time virtual address of a file offset (see `Array<Segment>.virtualAddress`).
    public func virtualAddress(fileOffset: UInt64) -> UInt64 { segments.virtualAddress(fileOffset: fileOffset) }
    public func fileOffset(virtualAddress: UInt64) -> UInt64 { segments.fileOffset(virtualAddress: virtualAddress) }

    /// The PT_LOAD segments of an open ELF file.
    public static func loadSegments(_ elf: OpaquePointer) -> [Segment] {
        var segments: [Segment] = []
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0 else { return [] }
        for i in 0..<count {
            var header = GElf_Phdr()
            if gelf_getphdr(elf, Int32(i), &header) != nil && header.p_type == UInt32(PT_LOAD) {
                segments.append(Segment(fileOffset: header.p_offset, virtualAddress: header.p_vaddr, fileSize: header.p_filesz))
            }
        }
        return segments
    }

    public var buildIDHex: String { buildID.map(Self.hex) ?? "" }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Array where Element == ElfImage.Segment {
    /// The link-time virtual address of a file offset, through the PT_LOAD
    /// segment that contains it (a PIE or shared library's load bias cancels out).
    public func virtualAddress(fileOffset: UInt64) -> UInt64 {
        // Differences, not sums: the program headers of a hostile file may put a segment anywhere.
        for segment in self where fileOffset >= segment.fileOffset && fileOffset - segment.fileOffset < Swift.max(segment.fileSize, 1) {
            return (fileOffset - segment.fileOffset) &+ segment.virtualAddress
        }
        return fileOffset
    }

    /// The file offset of a link-time virtual address: the inverse of `virtualAddress(fileOffset:)`.
    public func fileOffset(virtualAddress: UInt64) -> UInt64 {
        for segment in self where virtualAddress >= segment.virtualAddress && virtualAddress - segment.virtualAddress < Swift.max(segment.fileSize, 1) {
            return (virtualAddress - segment.virtualAddress) &+ segment.fileOffset
        }
        return virtualAddress
    }
}
