import CElfutils
import FlareTargetFiles
import Glibc

/// Where the functions of a file stripped of its symbols start: each FDE of
/// its call-frame information describes one function, so an address belongs
/// to the function whose FDE covers it, and one function is one name however
/// many of its instructions were sampled.
final class FunctionStarts {
    private let file: MappedElf
    private let cfi: OpaquePointer
    /// FDE start addresses (link-time virtual addresses), ascending.
    private let starts: [UInt64]
    /// Answers given: the agent names the same addresses window after window,
    /// and each libdw lookup allocates a frame state.
    private var known: [UInt64: UInt64?] = [:]

    /// Nil when the file has no `.eh_frame_hdr` table or no CFI to read.
    init?(path: String, rules: TargetFiles.Options = TargetFiles.Options()) {
        guard let file = try? MappedElf(path: path, rules: rules) else { return nil }
        let starts = CallFrameInfo.fdeStarts(file.elf)
        guard !starts.isEmpty, let cfi = CallFrameInfo.open(file) else { return nil }
        self.file = file
        self.cfi = cfi
        self.starts = starts
    }

    deinit { dwarf_cfi_end(cfi) }

    var memoryBytes: Int { starts.count * MemoryLayout<UInt64>.stride + known.count * 32 }

    /// The start of the function whose FDE covers `address`, or nil where no
    /// FDE does (PLT stubs, padding, code the CFI does not describe).
    func start(containing address: UInt64) -> UInt64? {
        if let answer = known[address] { return answer }
        let answer = lookUp(address)
        known[address] = answer
        return answer
    }

    private func lookUp(_ address: UInt64) -> UInt64? {
        var low = 0
        var high = starts.count
        while low < high {
            let mid = (low + high) / 2
            if starts[mid] <= address { low = mid + 1 } else { high = mid }
        }
        guard low > 0 else { return nil }
        // FDEs do not overlap: the covering one, if any, is the last to start at or before the address.
        var frame: OpaquePointer?
        guard dwarf_cfi_addrframe(cfi, address, &frame) == 0, let frame else { return nil }
        free(UnsafeMutableRawPointer(frame))
        return starts[low - 1]
    }

    func releasePages() { file.releasePages() }
}
