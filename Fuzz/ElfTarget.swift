import FlareSymbols
import FlareUnwind

/// ELF files as the symbolizer and the unwinder open them from a sampled
/// process (through libelf and libdw): build-id, segments, `.gnu_debuglink`,
/// symbols from `.symtab`/`.dynsym` and their demangled names, and the
/// compact unwind rows compiled from `.eh_frame` with `.eh_frame_hdr`.
///
/// Addresses probed (as addresses and as file offsets): the entry point, each
/// loadable segment's start, middle and end, and the input's last 32 bytes.
/// DWARF lines (`Symbolizer.frames`) are left out: each `MappedElf` open
/// scans /proc/self/maps, most of this target's time already.
enum ElfTarget: FuzzTarget {
    static let name = "elf"

    nonisolated(unsafe) static let file = FuzzInputFile(name)

    /// A whole file's unwind table is compiled only when it is this small:
    /// the probes reach the rest.
    static let compileAllFunctions = 64

    static func run(_ data: UnsafeRawBufferPointer) {
        file.write(data)
        let input = FuzzBytes(bytes: data)
        var addresses = [input.u64(24)]
        for i in 0..<4 { addresses.append(input.u64(data.count - 32 + 8 * i)) }

        if let image = try? ElfImage(path: file.path) {
            _ = image.buildIDHex
            _ = image.debugLink
            for segment in image.segments.prefix(8) {
                addresses += [segment.virtualAddress, segment.virtualAddress &+ segment.fileSize / 2, segment.virtualAddress &+ segment.fileSize &- 1]
                _ = image.virtualAddress(fileOffset: segment.fileOffset &+ segment.fileSize / 2)
            }
            _ = image.virtualAddress(fileOffset: input.u64(32))
            // Separate debug files are looked for under a root that holds none.
            let symbolizer = Symbolizer(kallsymsPath: "/nonexistent", debugRoot: "/nonexistent")
            for address in addresses {
                _ = image.symbols.lookup(address)
                _ = symbolizer.function(in: image, fileOffset: address)
            }
        }

        // MappedElf leaks libelf's descriptor and mapping of a file it
        // rejects as not ELF (elf_begin succeeded, elf_kind is not ELF_K_ELF):
        // only what libelf takes for ELF goes there until that is fixed.
        guard input.looksLikeELF else { return }
        if let table = try? UnwindTableCompiler.open(path: file.path) {
            for address in addresses {
                _ = table.row(at: address)
                _ = table.row(at: address &+ 1)
            }
            _ = table.virtualAddress(fileOffset: input.u64(32))
            if table.functionCount <= compileAllFunctions { table.compileAll() }
            table.releasePages()
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    ElfTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
