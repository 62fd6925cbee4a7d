import CElfutils
import FlareTargetFiles
import Glibc

/// One frame as DWARF debug info describes it.
public struct SourceFrame: Sendable, Equatable {
    public var function: String
    public var file: String
    public var line: Int64
    /// The line where the function is declared (DW_AT_decl_line); 0 if unknown.
    public var startLine: Int64

    public init(function: String, file: String, line: Int64, startLine: Int64 = 0) {
        self.function = function; self.file = file; self.line = line; self.startLine = startLine
    }
}

/// DWARF debug info of one ELF file (`.debug_info` and `.debug_line`), read
/// with libdw: the source line of an address and the chain of inlined calls
/// that contains it.
final class SourceLines {
    private let file: MappedElf
    private let dwarf: OpaquePointer

    static let tagSubprogram: Int32 = 0x2e
    static let tagInlinedSubroutine: Int32 = 0x1d
    static let atName: UInt32 = 0x03
    static let atLinkageName: UInt32 = 0x6e
    static let atCallFile: UInt32 = 0x58
    static let atCallLine: UInt32 = 0x59

    /// Bytes of the file's `.debug_*` sections, uncompressed: what libdw may
    /// decompress and parse, and so about what it holds while open.
    let debugBytes: Int

    /// Opens `path` if it carries DWARF debug info of at most `maxDebugBytes`; nil otherwise.
    init?(path: String, rules: TargetFiles.Options = TargetFiles.Options(), maxDebugBytes: Int = .max) {
        guard let file = try? MappedElf(path: path, rules: rules) else { return nil }
        let size = Self.debugSectionBytes(file.elf)
        guard size > 0, size <= maxDebugBytes, let dwarf = dwarf_begin_elf(file.elf, DWARF_C_READ, nil) else { return nil }
        self.file = file
        self.dwarf = dwarf
        debugBytes = size
    }

    private static func debugSectionBytes(_ elf: OpaquePointer) -> Int {
        var stringsIndex = 0
        guard elf_getshdrstrndx(elf, &stringsIndex) == 0 else { return 0 }
        var total = 0
        var section = elf_nextscn(elf, nil)
        while let scn = section {
            defer { section = elf_nextscn(elf, scn) }
            var header = GElf_Shdr()
            guard gelf_getshdr(scn, &header) != nil, header.sh_type != UInt32(SHT_NOBITS),
                  let name = elf_strptr(elf, stringsIndex, Int(header.sh_name)), strncmp(name, ".debug_", 7) == 0 else { continue }
            var compressed = GElf_Chdr()
            let size = header.sh_flags & UInt64(SHF_COMPRESSED) != 0 && gelf_getchdr(scn, &compressed) != nil ? compressed.ch_size : header.sh_size
            total += Int(clamping: size)
        }
        return total
    }

    deinit { dwarf_end(dwarf) }

    /// Drops the resident pages of the file (what libdw decompressed stays).
    func releasePages() { file.releasePages() }

    /// The frames at link-time address `address`, innermost (inlined) first,
    /// the physical function last; nil if no compilation unit covers it.
    func frames(at address: UInt64) -> [SourceFrame]? {
        var cu = Dwarf_Die()
        guard dwarf_addrdie(dwarf, address, &cu) != nil else { return nil }
        var file = ""
        var line: Int64 = 0
        if let sourceLine = dwarf_getsrc_die(&cu, address) {
            if let name = dwarf_linesrc(sourceLine, nil, nil) { file = String(cString: name) }
            var number: Int32 = 0
            if dwarf_lineno(sourceLine, &number) == 0 { line = Int64(number) }
        }
        var files: OpaquePointer?
        var fileCount = 0
        _ = dwarf_getsrcfiles(&cu, &files, &fileCount)

        // dwarf_getscopes follows an inlined call into the inlined function's
        // abstract tree, so after each inlined_subroutine the walk resumes from
        // that DIE's own chain of parents (dwarf_getscopes_die), as addr2line does.
        var frames: [SourceFrame] = []
        var scopes: UnsafeMutablePointer<Dwarf_Die>?
        var count = dwarf_getscopes(&cu, address, &scopes)
        var start = 0
        while count > 0, let current = scopes, frames.count < 64 {
            var next: UnsafeMutablePointer<Dwarf_Die>?
            var nextCount: Int32 = 0
            for index in start..<Int(count) {
                let tag = dwarf_tag(&current[index])
                guard tag == Self.tagSubprogram || tag == Self.tagInlinedSubroutine else { continue }
                var declared: Int32 = 0
                let startLine = dwarf_decl_line(&current[index], &declared) == 0 ? Int64(declared) : 0
                frames.append(SourceFrame(function: name(of: &current[index]), file: file, line: line, startLine: startLine))
                if tag == Self.tagSubprogram { break }
                // The next (outer) frame is at this inlined call's call site.
                (file, line) = callSite(of: &current[index], files: files, fileCount: fileCount)
                nextCount = dwarf_getscopes_die(&current[index], &next)
                break
            }
            free(current)
            scopes = next
            count = nextCount
            start = 1
        }
        if count > 0 { free(scopes) }
        return frames.isEmpty ? [SourceFrame(function: "", file: file, line: line)] : frames
    }

    private func callSite(of die: inout Dwarf_Die, files: OpaquePointer?, fileCount: Int) -> (String, Int64) {
        var file = ""
        var line: Int64 = 0
        var attribute = Dwarf_Attribute()
        var value: Dwarf_Word = 0
        if dwarf_attr(&die, Self.atCallFile, &attribute) != nil, dwarf_formudata(&attribute, &value) == 0,
           let files, Int(value) < fileCount, let name = dwarf_filesrc(files, Int(value), nil, nil) {
            file = String(cString: name)
        }
        if dwarf_attr(&die, Self.atCallLine, &attribute) != nil, dwarf_formudata(&attribute, &value) == 0 {
            line = Int64(value)
        }
        return (file, line)
    }

    /// The linkage (mangled) name if there is one, else the plain name,
    /// following abstract origins and specifications.
    private func name(of die: inout Dwarf_Die) -> String {
        var attribute = Dwarf_Attribute()
        for code in [Self.atLinkageName, Self.atName] {
            if dwarf_attr_integrate(&die, code, &attribute) != nil, let text = dwarf_formstring(&attribute) {
                return String(cString: text)
            }
        }
        return ""
    }
}
