import Glibc

/// An open file descriptor, closed when the last owner lets go.
public final class OpenFile: Sendable {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }
}

/// Function symbols sorted by address, looked up by binary search.
///
/// Stored as parallel arrays, 18 bytes a symbol: kallsyms has over 100 000
/// entries and a large server binary a quarter of a million. Names are either
/// copied into one byte buffer or, for an ELF file, left in the file's string
/// table and read when a lookup needs one: such a binary's `.strtab` is tens of
/// megabytes of names of which a profile shows a few hundred.
public struct SymbolTable: Sendable {
    /// Collects symbols before they are sorted.
    public struct Builder {
        fileprivate struct Entry {
            var start: UInt64
            var size: UInt32
            /// Offset of the name in `names`, or in `file`.
            var name: UInt32
            /// The name's length; 0 when it is read up to its NUL from the file.
            var length: UInt16
            var binding: Binding
        }

        fileprivate var entries: [Entry] = []
        fileprivate var names: [UInt8] = []
        fileprivate let file: OpenFile?

        public init() { file = nil }

        /// Names will be read from `file` (under 4 GiB) at the offsets given to `add(start:size:nameAt:binding:)`.
        public init(namesIn file: OpenFile) { self.file = file }

        public enum Binding: UInt8 { case local, global, weak }

        public mutating func add(start: UInt64, size: UInt64, name: UnsafeRawBufferPointer, binding: Binding = .local) {
            precondition(file == nil, "a builder over a file takes names by offset")
            let kept = name.prefix(Int(UInt16.max))
            entries.append(Entry(start: start, size: UInt32(clamping: size), name: UInt32(names.count), length: UInt16(kept.count), binding: binding))
            names.append(contentsOf: kept)
        }

        public mutating func add(start: UInt64, size: UInt64, name: String, binding: Binding = .local) {
            var name = name
            name.withUTF8 { add(start: start, size: size, name: UnsafeRawBufferPointer($0), binding: binding) }
        }

        /// A symbol whose NUL-terminated name stays in the file at `nameAt`.
        public mutating func add(start: UInt64, size: UInt64, nameAt fileOffset: UInt32, binding: Binding) {
            precondition(file != nil, "a builder over memory copies names")
            entries.append(Entry(start: start, size: UInt32(clamping: size), name: fileOffset, length: 0, binding: binding))
        }
    }

    private let starts: [UInt64]
    private let sizes: [UInt32]
    private let nameStarts: [UInt32]
    private let nameLengths: [UInt16]
    private let names: [UInt8]
    private let file: OpenFile?

    /// Bytes held by the table's arrays.
    public var memoryBytes: Int { starts.count * 18 + names.count }

    /// Sorts the symbols, keeps one of several aliases at an address (the
    /// name perf would show: not weak, then global, then fewer leading
    /// underscores, then the longer name), and gives zero-sized ones (common
    /// in assembly and in kallsyms) the room up to the next symbol.
    public init(_ builder: consuming Builder) {
        // Taken out of the builder, so the sort does not copy a quarter of a million entries.
        var entries: [Builder.Entry] = []
        swap(&entries, &builder.entries)
        entries.sort { $0.start < $1.start }
        names = builder.names
        file = builder.file
        var starts: [UInt64] = []
        var sizes: [UInt32] = []
        var nameStarts: [UInt32] = []
        var nameLengths: [UInt16] = []
        let count = entries.count
        starts.reserveCapacity(count)
        sizes.reserveCapacity(count)
        nameStarts.reserveCapacity(count)
        nameLengths.reserveCapacity(count)
        var i = 0
        while i < count {
            var end = i + 1
            while end < count && entries[end].start == entries[i].start { end += 1 }
            var chosen = entries[i]
            if end - i > 1 {
                // Aliases: the preferred name, but the largest extent. Only here are names read.
                var best = Int32.min
                for alias in entries[i..<end] {
                    let score = Self.preference(alias, name: Self.nameBytes(start: alias.name, length: alias.length, names: names, file: file))
                    if score > best { best = score; chosen.name = alias.name; chosen.length = alias.length }
                    chosen.size = max(chosen.size, alias.size)
                }
            }
            starts.append(chosen.start)
            sizes.append(chosen.size)
            nameStarts.append(chosen.name)
            nameLengths.append(chosen.length)
            i = end
        }
        for j in starts.indices where sizes[j] == 0 {
            sizes[j] = j + 1 < starts.count ? UInt32(clamping: starts[j + 1] - starts[j]) : 4096
        }
        self.starts = starts
        self.sizes = sizes
        self.nameStarts = nameStarts
        self.nameLengths = nameLengths
    }

    private static func preference(_ entry: Builder.Entry, name: [UInt8]) -> Int32 {
        let underscores = name.prefix { $0 == UInt8(ascii: "_") }.count
        return (entry.binding != .weak ? 2_000_000 : 0) + (entry.binding == .global ? 1_000_000 : 0)
            - Int32(min(underscores, 9)) * 10_000 + Int32(min(name.count, 9_999))
    }

    /// A name from the buffer, or read from the file up to its NUL (at most 64 KiB).
    private static func nameBytes(start: UInt32, length: UInt16, names: [UInt8], file: OpenFile?) -> [UInt8] {
        guard let file else { return Array(names[Int(start)..<Int(start) + Int(length)]) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256)
        while bytes.count < 1 << 16 {
            let n = chunk.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress, $0.count, off_t(start) + off_t(bytes.count)) }
            guard n > 0 else { break }
            if let nul = chunk[..<n].firstIndex(of: 0) {
                bytes.append(contentsOf: chunk[..<nul])
                return bytes
            }
            bytes.append(contentsOf: chunk[..<n])
        }
        return bytes
    }

    /// The raw (mangled) name of the symbol containing `address`.
    public func lookup(_ address: UInt64) -> String? {
        var low = 0
        var high = starts.count
        while low < high {
            let mid = (low + high) / 2
            if starts[mid] <= address { low = mid + 1 } else { high = mid }
        }
        // `low - 1` is the last symbol starting at or before the address; an
        // enclosing larger symbol may start a little earlier, so look back a few.
        var i = low - 1
        var steps = 0
        while i >= 0 && steps < 8 {
            if address - starts[i] < UInt64(sizes[i]) {
                return String(decoding: Self.nameBytes(start: nameStarts[i], length: nameLengths[i], names: names, file: file), as: UTF8.self)
            }
            i -= 1
            steps += 1
        }
        return nil
    }

    public var count: Int { starts.count }
    public var isEmpty: Bool { starts.isEmpty }
}
