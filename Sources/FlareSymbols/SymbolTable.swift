import Glibc

/// An open file descriptor, closed when the last owner lets go.
public final class OpenFile: Sendable {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }
}

/// Function symbols sorted by address, looked up by binary search.
///
/// Stored as parallel arrays: kallsyms has over 100 000 entries and
/// libswiftCore tens of thousands, and a String and a struct per symbol made
/// loading them cost more than the whole recording. Names are either copied
/// into one byte buffer or, for an ELF file, left in the file's string table
/// and read when a lookup needs one: a large server binary's `.strtab` is
/// megabytes of names of which a profile shows a few hundred.
public struct SymbolTable: Sendable {
    /// Collects symbols before they are sorted.
    public struct Builder {
        fileprivate var starts: [UInt64] = []
        fileprivate var sizes: [UInt64] = []
        fileprivate var preference: [Int32] = []
        fileprivate var nameOffsets: [UInt32] = []
        fileprivate var nameLengths: [UInt32] = []
        fileprivate var names: [UInt8] = []
        fileprivate let file: OpenFile?

        public init() { file = nil }

        /// Names will be read from `file` (under 4 GiB) at the offsets given to `add(start:size:name:fileOffset:binding:)`.
        public init(namesIn file: OpenFile) { self.file = file }

        public enum Binding { case local, global, weak }

        /// - Parameter binding: among aliases at one address, the name perf
        ///   would show wins: not weak, then global, then fewer leading
        ///   underscores, then the longer name.
        public mutating func add(start: UInt64, size: UInt64, name: UnsafeRawBufferPointer, binding: Binding = .local) {
            precondition(file == nil, "a builder over a file takes names by offset")
            append(start: start, size: size, name: name, binding: binding, nameOffset: UInt32(names.count))
            names.append(contentsOf: name)
        }

        /// A symbol whose name (`name`, read now only to rank aliases) stays in the file at `fileOffset`.
        public mutating func add(start: UInt64, size: UInt64, name: UnsafeRawBufferPointer, fileOffset: UInt32, binding: Binding) {
            precondition(file != nil, "a builder over memory copies names")
            append(start: start, size: size, name: name, binding: binding, nameOffset: fileOffset)
        }

        private mutating func append(start: UInt64, size: UInt64, name: UnsafeRawBufferPointer, binding: Binding, nameOffset: UInt32) {
            starts.append(start)
            sizes.append(size)
            let underscores = name.prefix { $0 == UInt8(ascii: "_") }.count
            preference.append((binding != .weak ? 2_000_000 : 0) + (binding == .global ? 1_000_000 : 0)
                - Int32(min(underscores, 9)) * 10_000 + Int32(min(name.count, 9_999)))
            nameOffsets.append(nameOffset)
            nameLengths.append(UInt32(min(name.count, 1 << 16)))
        }

        public mutating func add(start: UInt64, size: UInt64, name: String, binding: Binding = .local) {
            var name = name
            name.withUTF8 { add(start: start, size: size, name: UnsafeRawBufferPointer($0), binding: binding) }
        }
    }

    private let starts: [UInt64]
    private let ends: [UInt64]
    private let nameStarts: [UInt32]
    private let nameLengths: [UInt32]
    private let names: [UInt8]
    private let file: OpenFile?

    /// Bytes held by the table's arrays.
    public var memoryBytes: Int { starts.count * 24 + names.count }

    /// Sorts the symbols, keeps one of several aliases at an address, and gives zero-sized ones (common in assembly and in kallsyms)
    /// the room up to the next symbol.
    public init(_ builder: Builder) {
        let count = builder.starts.count
        var order = Array(0..<count)
        order.sort { a, b in
            builder.starts[a] != builder.starts[b] ? builder.starts[a] < builder.starts[b] : builder.preference[a] > builder.preference[b]
        }
        var starts: [UInt64] = []
        var ends: [UInt64] = []
        var nameStarts: [UInt32] = []
        var nameLengths: [UInt32] = []
        starts.reserveCapacity(count)
        ends.reserveCapacity(count)
        nameStarts.reserveCapacity(count)
        nameLengths.reserveCapacity(count)
        for index in order {
            if starts.last == builder.starts[index] {
                // An alias: keep the preferred name, but the largest extent.
                ends[ends.count - 1] = max(ends[ends.count - 1], builder.starts[index] &+ builder.sizes[index])
                continue
            }
            starts.append(builder.starts[index])
            ends.append(builder.starts[index] &+ builder.sizes[index])
            nameStarts.append(builder.nameOffsets[index])
            nameLengths.append(builder.nameLengths[index])
        }
        for i in starts.indices where ends[i] <= starts[i] {
            ends[i] = i + 1 < starts.count ? starts[i + 1] : starts[i] &+ 4096
        }
        self.starts = starts
        self.ends = ends
        self.nameStarts = nameStarts
        self.nameLengths = nameLengths
        self.names = builder.names
        self.file = builder.file
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
            if address < ends[i] { return name(i) }
            i -= 1
            steps += 1
        }
        return nil
    }

    private func name(_ i: Int) -> String? {
        let start = Int(nameStarts[i])
        let length = Int(nameLengths[i])
        guard let file else { return String(decoding: names[start..<start + length], as: UTF8.self) }
        let bytes = [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
            count = max(0, pread(file.fd, buffer.baseAddress, length, off_t(start)))
        }
        return bytes.count == length ? String(decoding: bytes, as: UTF8.self) : nil
    }

    public var count: Int { starts.count }
    public var isEmpty: Bool { starts.isEmpty }
}
