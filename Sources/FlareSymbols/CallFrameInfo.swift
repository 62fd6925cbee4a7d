import CElfutils
import Glibc

/// A file's call-frame information (`.eh_frame`, indexed by `.eh_frame_hdr`):
/// what the DWARF unwinder compiles its rows from, and where the symbolizer
/// finds function boundaries in files stripped of their symbols.
public enum CallFrameInfo {
    /// The file's `.eh_frame` CFI, looked up through `.eh_frame_hdr`'s binary
    /// search table. Through section headers, libdw uses that table only if it
    /// meets `.eh_frame_hdr` before `.eh_frame`; lld lays them out the other
    /// way (every Swift binary), and libdw then reads and keeps every FDE up
    /// to the one it looks for: 10 MB of heap for a lookup near the end of
    /// the static flare binary. Through the program headers it always uses the
    /// table, so the section headers are hidden from it (in this process's
    /// view of the ELF header) while it opens the CFI.
    public static func open(_ file: MappedElf) -> OpaquePointer? {
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

    /// The sorted FDE start addresses from `.eh_frame_hdr`'s binary-search table.
    public static func fdeStarts(_ elf: OpaquePointer) -> [UInt64] {
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
public enum EhFrameHeader {
    public static func fdeStarts(_ bytes: UnsafeRawBufferPointer, sectionAddress: UInt64) -> [UInt64] {
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
