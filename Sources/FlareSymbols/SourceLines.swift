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
            // Saturating: a hostile file's sizes may sum past Int.max.
            let (sum, overflow) = total.addingReportingOverflow(Int(clamping: size))
            total = overflow ? .max : sum
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

        // Innermost first: each inlined call, then the function it was
        // inlined into, whose line is the inlined call's call site.
        var frames: [SourceFrame] = []
        for var die in scopes(in: &cu, at: address) where frames.count < 64 {
            let tag = dwarf_tag(&die)
            guard tag == Self.tagSubprogram || tag == Self.tagInlinedSubroutine else { continue }
            var declared: Int32 = 0
            let startLine = dwarf_decl_line(&die, &declared) == 0 ? Int64(declared) : 0
            frames.append(SourceFrame(function: name(of: &die), file: file, line: line, startLine: startLine))
            if tag == Self.tagSubprogram { break }
            (file, line) = callSite(of: &die, files: files, fileCount: fileCount)
        }
        return frames.isEmpty ? [SourceFrame(function: "", file: file, line: line)] : frames
    }

    /// DIEs that cover addresses, and DIEs (namespaces, classes) whose
    /// children may cover them although they have no ranges of their own.
    static let rangedTags: Set<Int32> = [tagSubprogram, tagInlinedSubroutine, 0x0b, 0x32, 0x25, 0x03, 0x22]
    static let containerTags: Set<Int32> = [0x39, 0x02, 0x13, 0x17, 0x1e, 0x38]
    /// DIEs looked at per lookup and nesting followed: a hostile unit of
    /// millions of DIEs, or nested a million deep, costs no more than this.
    static let maxVisitedDIEs = 200_000
    static let maxDepth = 128

    /// The DIEs of the unit whose ranges hold `address`, innermost first:
    /// the concrete tree only, the way addr2line reports inlined calls. Walked
    /// here rather than with dwarf_getscopes, which follows inlined calls into
    /// their abstract origins and, in elfutils 0.188, leaks its array when a
    /// malformed unit makes its second walk fail.
    private func scopes(in unit: inout Dwarf_Die, at address: UInt64) -> [Dwarf_Die] {
        var chain: [Dwarf_Die] = []
        var visited = 0
        func search(_ parent: inout Dwarf_Die, depth: Int) -> Bool {
            var child = Dwarf_Die()
            guard depth < Self.maxDepth, dwarf_child(&parent, &child) == 0 else { return false }
            while visited < Self.maxVisitedDIEs {
                visited += 1
                let tag = dwarf_tag(&child)
                if Self.rangedTags.contains(tag), dwarf_haspc(&child, address) == 1 {
                    chain.append(child)
                    _ = search(&child, depth: depth + 1)
                    return true
                }
                if Self.containerTags.contains(tag), search(&child, depth: depth + 1) { return true }
                var next = Dwarf_Die()
                guard dwarf_siblingof(&child, &next) == 0 else { return false }
                child = next
            }
            return false
        }
        _ = search(&unit, depth: 0)
        return chain.reversed()
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
