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
        let fdeStarts = CallFrameInfo.fdeStarts(file.elf)
        guard !fdeStarts.isEmpty, let cfi = CallFrameInfo.open(file) else {
            return UnwindTable(fdeStarts: [], segments: segments, compiler: nil)
        }
        return UnwindTable(fdeStarts: fdeStarts, segments: segments, compiler: FunctionCompiler(file: file, cfi: cfi))
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
}
