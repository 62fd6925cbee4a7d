import Glibc

/// Kernel function names from /proc/kallsyms (all zero addresses when
/// kptr_restrict hides them, which leaves the table empty).
public struct KernelSymbols: Sendable {
    public let table: SymbolTable

    public init(path: String = "/proc/kallsyms") {
        var symbols = SymbolTable.Builder()
        if let file = fopen(path, "re") {
            defer { fclose(file) }
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            while getline(&line, &capacity, file) > 0, let text = line {
                // "ffffffff81000000 T _stext\t[module]"
                var end: UnsafeMutablePointer<CChar>?
                let address = strtoull(text, &end, 16)
                guard address != 0, let typePointer = end, typePointer[0] == 0x20 else { continue }
                let rawType = UInt8(bitPattern: typePointer[1])
                let type = rawType | 0x20  // lowercase
                guard type == UInt8(ascii: "t") || type == UInt8(ascii: "w"), typePointer[2] == 0x20 else { continue }
                let name = typePointer + 3
                var length = 0
                while name[length] != 0 && name[length] != 0x0a && name[length] != 0x09 { length += 1 }
                symbols.add(start: address, size: 0, name: UnsafeRawBufferPointer(start: name, count: length),
                            binding: rawType == UInt8(ascii: "T") ? .global : rawType == UInt8(ascii: "W") || rawType == UInt8(ascii: "w") ? .weak : .local)
            }
            free(line)
        }
        table = SymbolTable(symbols)
    }

    public func name(_ address: UInt64) -> String? { table.lookup(address) }
}
