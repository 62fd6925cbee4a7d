import FlareSymbols

/// DWARF as the symbolizer reads it from a sampled file through libdw
/// (`Symbolizer.frames`): the line table, the compile units' DIEs, inlined
/// subroutines and their call sites, names in `.debug_str`, compressed
/// `.debug_*` sections, and the size bound checked before libdw opens them.
///
/// File offsets probed: each loadable segment's start, middle and end, and
/// two taken from the input, so that mutations reach addresses the line
/// table and the DIE ranges name.
enum DwarfTarget: FuzzTarget {
    static let name = "dwarf"

    nonisolated(unsafe) static let file = FuzzInputFile(name)

    static func run(_ data: UnsafeRawBufferPointer) {
        let input = FuzzBytes(bytes: data)
        // What libelf rejects as not ELF has no DWARF to read (and see ElfTarget).
        guard input.looksLikeELF else { return }
        file.write(data)
        guard let image = try? ElfImage(path: file.path) else { return }
        var offsets = [input.u64(24), input.u64(data.count - 16), input.u64(data.count - 8)]
        for segment in image.segments.prefix(8) {
            offsets += [segment.fileOffset, segment.fileOffset &+ segment.fileSize / 2, segment.fileOffset &+ segment.fileSize &- 1]
        }
        // A bound like the agent's: a hostile file declaring gigabytes of DWARF is refused before libdw reads it.
        let symbolizer = Symbolizer(kallsymsPath: "/nonexistent", debugRoot: "/nonexistent", expandInlines: true, maxDebugInfoBytes: 8 << 20)
        for offset in offsets {
            if let frames = symbolizer.frames(in: image, fileOffset: offset) {
                FuzzCheck.require(!frames.isEmpty, "frames(in:fileOffset:) answered an empty list")
            }
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    DwarfTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
