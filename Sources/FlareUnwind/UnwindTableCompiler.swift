import CElfutils
import FlareSymbols
import FlareTargetFiles
import Glibc

/// Builds an `UnwindTable` from an ELF file's `.eh_frame`, read with libdw's
/// CFI API: for an FDE (found through `.eh_frame_hdr`'s sorted table) it asks
/// libdw for the frame state row by row and keeps what the compact form can say.
public enum UnwindTableCompiler {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    // DWARF numbers (x86-64 psABI and the DWARF standard).
    static let dwarfRBP: Int32 = 6
    static let dwarfRSP: Int32 = 7
    static let dwarfRA: Int32 = 16
    static let opBreg0: UInt8 = 0x70
    static let opCallFrameCFA: UInt8 = 0x9c
    static let opBregx: UInt8 = 0x92
    static let opPlusUconst: UInt8 = 0x23

    /// The table of the ELF file at `path`, every function compiled now.
    public static func compile(path: String) throws(Failure) -> UnwindTable {
        let table = try open(path: path)
        table.compileAll()
        return table
    }

    /// The table of the ELF file at `path`, its functions compiled on first use.
    public static func open(path: String, rules: TargetFiles.Options = TargetFiles.Options()) throws(Failure) -> UnwindTable {
        let file: MappedElf
        do { file = try MappedElf(path: path, rules: rules) } catch { throw Failure(description: error.description) }
        let segments = ElfImage.loadSegments(file.elf)
        let fdeStarts = ehFrameHeaderTable(file.elf)
        guard !fdeStarts.isEmpty, let cfi = searchableCFI(file) else {
            return UnwindTable(fdeStarts: [], segments: segments, compiler: nil)
        }
        return UnwindTable(fdeStarts: fdeStarts, segments: segments, compiler: FunctionCompiler(file: file, cfi: cfi))
    }

    /// The file's `.eh_frame` CFI, looked up through `.eh_frame_hdr`'s binary
    /// search table. Through section headers, libdw uses that table only if it
    /// meets `.eh_frame_hdr` before `.eh_frame`; lld lays them out the other
    /// way (every Swift binary), and libdw then reads and keeps every FDE up
    /// to the one it looks for: 10 MB of heap for a lookup near the end of
    /// the static flare binary. Through the program headers it always uses the
    /// table, so the section headers are hidden from it (in this process's
    /// view of the ELF header) while it opens the CFI.
    static func searchableCFI(_ file: MappedElf) -> OpaquePointer? {
        let elf = file.elf
        let throughProgramHeaders = file.withWritableHeader { () -> OpaquePointer? in
            var header = GElf_Ehdr()
            guard gelf_getehdr(elf, &header) != nil else { return nil }
            let stringsIndex = header.e_shstrndx
            header.e_shstrndx = 0
            guard gelf_update_ehdr(elf, &header) != 0 else { return nil }
            let cfi = dwarf_getcfi_elf(elf)
            header.e_shstrndx = stringsIndex
            _ = gelf_update_ehdr(elf, &header)
            return cfi
        }
        return (throughProgramHeaders ?? nil) ?? dwarf_getcfi_elf(elf)
    }

    /// One file's open CFI, from which functions are compiled one at a time.
    final class FunctionCompiler {
        private let file: MappedElf
        private let cfi: OpaquePointer

        init(file: MappedElf, cfi: OpaquePointer) {
            self.file = file
            self.cfi = cfi
        }

        deinit { dwarf_cfi_end(cfi) }

        func releasePages() { file.releasePages() }

        /// The rows of the function that starts at `start` and ends at the
        /// next FDE's start `end`: (first address, row), ascending, ending in a
        /// `.none` row where the FDE stops short of `end`.
        func rows(from start: UInt64, to end: UInt64) -> [(UInt64, UnwindTable.Row)] {
            var compiled: [(UInt64, UnwindTable.Row)] = []
            var address = start
            var lastEnd = start
            // Bounded: an FDE has at most a few hundred rows; hostile CFI must not loop us.
            for _ in 0..<4096 {
                var frame: OpaquePointer?
                guard dwarf_cfi_addrframe(cfi, address, &frame) == 0, let frame else { break }
                var rowStart: Dwarf_Addr = 0
                var rowEnd: Dwarf_Addr = 0
                var signal = false
                let raRegister = dwarf_frame_info(frame, &rowStart, &rowEnd, &signal)
                let row = UnwindTableCompiler.compileRow(frame, signal: signal, raRegister: raRegister)
                free(UnsafeMutableRawPointer(frame))
                guard rowEnd > address else { break }
                if compiled.last?.0 == rowStart {
                    compiled[compiled.count - 1].1 = row
                } else if compiled.last?.1 != row {
                    compiled.append((max(rowStart, address), row))
                }
                lastEnd = rowEnd
                address = rowEnd
                if address >= end { break }
            }
            if lastEnd < end && compiled.last?.1.kind != UnwindTable.Kind.none {
                compiled.append((lastEnd, .none))
            }
            return compiled
        }
    }

    static func compileRow(_ frame: OpaquePointer, signal: Bool, raRegister: Int32) -> UnwindTable.Row {
        var row = UnwindTable.Row(kind: .unsupported, cfaOffset: 0, raOffset: 0, bpOffset: UnwindTable.Row.unchangedBP)
        guard !signal, raRegister == dwarfRA else { return row }
        var ops: UnsafeMutablePointer<Dwarf_Op>?
        var count = 0
        guard dwarf_frame_cfa(frame, &ops, &count) == 0, let ops, count > 0 else { return row }
        if count == 1, let (register, offset) = registerPlusOffset(ops[0]), register == dwarfRSP || register == dwarfRBP {
            guard let cfaOffset = Int32(exactly: offset) else { return row }
            row.kind = register == dwarfRSP ? .cfaSP : .cfaBP
            row.cfaOffset = cfaOffset
        } else if isPLTExpression(ops, count) {
            row.kind = .plt
            row.cfaOffset = 8
        } else {
            return row
        }

        switch savedOffset(frame, register: dwarfRA) {
        case .offset(let offset):
            guard let small = Int8(exactly: offset) else { row.kind = .unsupported; return row }
            row.raOffset = small
        case .undefined: return UnwindTable.Row(kind: .outermost, cfaOffset: 0, raOffset: 0, bpOffset: UnwindTable.Row.unchangedBP)
        case .sameValue, .unsupported: row.kind = .unsupported; return row
        }
        switch savedOffset(frame, register: dwarfRBP) {
        case .offset(let offset): row.bpOffset = offset
        case .sameValue, .undefined: break
        case .unsupported: row.kind = .unsupported
        }
        return row
    }

    /// `DW_OP_bregN offset` or `DW_OP_bregx N offset` (libdw uses the latter for CFA rules).
    private static func registerPlusOffset(_ op: Dwarf_Op) -> (Int32, Int64)? {
        if op.atom >= opBreg0 && op.atom < opBreg0 + 32 { return (Int32(op.atom - opBreg0), Int64(bitPattern: op.number)) }
        if op.atom == opBregx, op.number < 128 { return (Int32(op.number), Int64(bitPattern: op.number2)) }
        return nil
    }

    private enum SavedRegister { case offset(Int16), sameValue, undefined, unsupported }

    /// Where CFI says the caller's `register` was saved: "offset(N)" from the CFA,
    /// which libdw spells as `DW_OP_call_frame_cfa [DW_OP_plus_uconst N]`.
    private static func savedOffset(_ frame: OpaquePointer, register: Int32) -> SavedRegister {
        var memory = [Dwarf_Op](repeating: Dwarf_Op(), count: 3)
        var ops: UnsafeMutablePointer<Dwarf_Op>?
        var count = 0
        return memory.withUnsafeMutableBufferPointer { buffer -> SavedRegister in
            guard dwarf_frame_register(frame, register, buffer.baseAddress!, &ops, &count) == 0 else { return .unsupported }
            if count == 0 { return ops == nil ? .sameValue : .undefined }
            guard let ops, ops[0].atom == opCallFrameCFA else { return .unsupported }
            if count == 1 { return .offset(0) }
            guard count == 2, ops[1].atom == opPlusUconst, let offset = Int16(exactly: Int64(bitPattern: ops[1].number)) else {
                return .unsupported
            }
            return .offset(offset)
        }
    }

    /// The CFA expression GNU ld emits for .plt entries:
    /// `DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and; DW_OP_lit11|10; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus`.
    private static func isPLTExpression(_ ops: UnsafeMutablePointer<Dwarf_Op>, _ count: Int) -> Bool {
        guard count == 9 else { return false }
        let atoms = (0..<9).map { ops[$0].atom }
        return atoms[0] == opBreg0 + 7 && ops[0].number == 8 && atoms[1] == opBreg0 + 16
            && atoms[2] == 0x3f && atoms[3] == 0x1a && (atoms[4] == 0x3b || atoms[4] == 0x3a)
            && atoms[5] == 0x2a && atoms[6] == 0x33 && atoms[7] == 0x24 && atoms[8] == 0x22
    }

    /// The sorted FDE start addresses from `.eh_frame_hdr`'s binary-search table.
    static func ehFrameHeaderTable(_ elf: OpaquePointer) -> [UInt64] {
        var stringsIndex = 0
        guard elf_getshdrstrndx(elf, &stringsIndex) == 0 else { return [] }
        var section = elf_nextscn(elf, nil)
        while let scn = section {
            defer { section = elf_nextscn(elf, scn) }
            var header = GElf_Shdr()
            guard gelf_getshdr(scn, &header) != nil, let name = elf_strptr(elf, stringsIndex, Int(header.sh_name)),
                  strcmp(name, ".eh_frame_hdr") == 0, let data = elf_getdata(scn, nil), let base = data.pointee.d_buf else { continue }
            let bytes = UnsafeRawBufferPointer(start: base, count: data.pointee.d_size)
            return EhFrameHeader.fdeStarts(bytes, sectionAddress: header.sh_addr)
        }
        return []
    }
}

/// The `.eh_frame_hdr` layout: version, three pointer encodings, the
/// `.eh_frame` pointer, the FDE count, then (initial location, FDE address) pairs.
enum EhFrameHeader {
    static func fdeStarts(_ bytes: UnsafeRawBufferPointer, sectionAddress: UInt64) -> [UInt64] {
        guard bytes.count >= 4, bytes[0] == 1 else { return [] }
        let framePointerEncoding = bytes[1]
        let countEncoding = bytes[2]
        let tableEncoding = bytes[3]
        var offset = 4
        guard read(bytes, &offset, framePointerEncoding, sectionAddress) != nil,
              let count = read(bytes, &offset, countEncoding, sectionAddress), count < 10_000_000 else { return [] }
        var starts: [UInt64] = []
        starts.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let location = read(bytes, &offset, tableEncoding, sectionAddress),
                  read(bytes, &offset, tableEncoding, sectionAddress) != nil else { break }
            starts.append(location)
        }
        starts.sort()
        return starts
    }

    /// Reads one DW_EH_PE-encoded pointer.
    private static func read(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int, _ encoding: UInt8, _ sectionAddress: UInt64) -> UInt64? {
        let fieldAddress = sectionAddress &+ UInt64(offset)
        let value: UInt64
        func load<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard offset + MemoryLayout<T>.size <= bytes.count else { return nil }
            defer { offset += MemoryLayout<T>.size }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        switch encoding & 0x0f {
        case 0x03: guard let v = load(UInt32.self) else { return nil }; value = UInt64(v)
        case 0x0b: guard let v = load(Int32.self) else { return nil }; value = UInt64(bitPattern: Int64(v))
        case 0x04, 0x0c, 0x00: guard let v = load(UInt64.self) else { return nil }; value = v
        case 0x02: guard let v = load(UInt16.self) else { return nil }; value = UInt64(v)
        case 0x0a: guard let v = load(Int16.self) else { return nil }; value = UInt64(bitPattern: Int64(v))
        default: return nil
        }
        switch encoding & 0x70 {
        case 0x00: return value
        case 0x10: return fieldAddress &+ value  // pcrel
        case 0x30: return sectionAddress &+ value  // datarel: relative to .eh_frame_hdr
        default: return nil
        }
    }
}
