import CElfutils
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
    /// Where the symbols came from, when not from this file (separate debug info).
    public private(set) var symbolSource: String?
    /// The open file: the same inode whatever happens to the path.
    private let file: OpenFile
    private var fd: Int32 { file.fd }
    private var loaded: (symbols: SymbolTable, hasSymtab: Bool)?

    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    private static let libelfReady: Bool = elf_version(UInt32(EV_CURRENT)) != UInt32(EV_NONE)

    public init(path: String) throws(OpenError) {
        guard Self.libelfReady else { throw OpenError(description: "libelf version mismatch") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OpenError(description: "\(path): \(String(cString: strerror(errno)))") }
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

        var segments: [Segment] = []
        var count = 0
        if elf_getphdrnum(elf, &count) == 0 {
            for i in 0..<count {
                var header = GElf_Phdr()
                if gelf_getphdr(elf, Int32(i), &header) != nil && header.p_type == UInt32(PT_LOAD) {
                    segments.append(Segment(fileOffset: header.p_offset, virtualAddress: header.p_vaddr, fileSize: header.p_filesz))
                }
            }
        }
        self.segments = segments
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

    /// Function symbols of `.symtab` and `.dynsym`, their names left in the
    /// file when its string tables can be read in place.
    private static func readSymbols(_ file: OpenFile) -> (symbols: SymbolTable, hasSymtab: Bool) {
        guard let elf = elf_begin(file.fd, ELF_C_READ_MMAP, nil) else { return (SymbolTable(SymbolTable.Builder()), false) }
        defer { elf_end(elf) }
        var info = stat()
        let small = fstat(file.fd, &info) == 0 && info.st_size < off_t(UInt32.max)
        let inPlace = small && stringTablesReadInPlace(elf)
        var collected = inPlace ? SymbolTable.Builder(namesIn: file) : SymbolTable.Builder()
        var sawSymtab = false
        var section = elf_nextscn(elf, nil)
        while let scn = section {
            defer { section = elf_nextscn(elf, scn) }
            var header = GElf_Shdr()
            guard gelf_getshdr(scn, &header) != nil,
                  header.sh_type == UInt32(SHT_SYMTAB) || header.sh_type == UInt32(SHT_DYNSYM),
                  header.sh_entsize > 0, let data = elf_getdata(scn, nil) else { continue }
            if header.sh_type == UInt32(SHT_SYMTAB) { sawSymtab = true }
            var strings = GElf_Shdr()
            let stringsOffset = inPlace && gelf_getshdr(elf_getscn(elf, Int(header.sh_link)), &strings) != nil ? strings.sh_offset : nil
            let symbolCount = Int(header.sh_size / header.sh_entsize)
            for index in 0..<symbolCount {
                var symbol = GElf_Sym()
                guard gelf_getsym(data, Int32(index), &symbol) != nil else { continue }
                let type = Int32(symbol.st_info & 0xf)
                guard type == STT_FUNC || type == STT_GNU_IFUNC, symbol.st_shndx != UInt16(SHN_UNDEF), symbol.st_value != 0,
                      let name = elf_strptr(elf, Int(header.sh_link), Int(symbol.st_name)) else { continue }
                let bytes = UnsafeRawBufferPointer(start: name, count: strlen(name))
                if let stringsOffset {
                    collected.add(start: symbol.st_value, size: symbol.st_size, name: bytes, fileOffset: UInt32(stringsOffset + UInt64(symbol.st_name)),
                                  binding: Self.binding(symbol.st_info >> 4))
                } else if !inPlace {
                    collected.add(start: symbol.st_value, size: symbol.st_size, name: bytes, binding: Self.binding(symbol.st_info >> 4))
                }
            }
        }
        return (SymbolTable(collected), sawSymtab)
    }

    /// Whether every symbol table's string table is stored plainly in the
    /// file (not compressed), so names can be read from it by offset.
    private static func stringTablesReadInPlace(_ elf: OpaquePointer) -> Bool {
        var section = elf_nextscn(elf, nil)
        while let scn = section {
            defer { section = elf_nextscn(elf, scn) }
            var header = GElf_Shdr()
            guard gelf_getshdr(scn, &header) != nil, header.sh_type == UInt32(SHT_SYMTAB) || header.sh_type == UInt32(SHT_DYNSYM) else { continue }
            var strings = GElf_Shdr()
            guard let stringsSection = elf_getscn(elf, Int(header.sh_link)), gelf_getshdr(stringsSection, &strings) != nil,
                  strings.sh_type == UInt32(SHT_STRTAB), strings.sh_flags & UInt64(SHF_COMPRESSED) == 0,
                  strings.sh_offset + strings.sh_size < UInt64(UInt32.max) else { return false }
        }
        return true
    }

    /// Takes the symbols of this file's separate debug file (same link-time
    /// addresses), which has the full `.symtab` a stripped file lacks.
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

    /// The link-time virtual address of a file offset, through the PT_LOAD
    /// segment that contains it (a PIE or shared library's load bias cancels out).
    public func virtualAddress(fileOffset: UInt64) -> UInt64 {
        for segment in segments where fileOffset >= segment.fileOffset && fileOffset < segment.fileOffset + max(segment.fileSize, 1) {
            return fileOffset - segment.fileOffset + segment.virtualAddress
        }
        return fileOffset
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
