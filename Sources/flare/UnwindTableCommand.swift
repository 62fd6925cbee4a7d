import ArgumentParser
import FlareUnwind
import Glibc

struct UnwindTableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unwind-table",
        abstract: "Compile an ELF file's DWARF CFI into Flare's unwind table and report its size.",
        discussion: "Shows what the DWARF unwinder will use for a file: rows by kind, memory, and compile time."
    )

    @Argument(help: "An ELF file (executable or shared library).")
    var file: String

    func run() throws {
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let compiled = Result { () throws(UnwindTableCompiler.Failure) in try UnwindTableCompiler.compile(path: file) }
        guard case .success(let table) = compiled else {
            if case .failure(let error) = compiled { printError(error.description) }
            throw ExitCode.failure
        }
        var end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &end)
        let millis = Double(end.tv_sec - start.tv_sec) * 1000 + Double(end.tv_nsec - start.tv_nsec) / 1e6
        var kinds: [String: Int] = [:]
        for kind in table.rowKinds { kinds[String(describing: kind), default: 0] += 1 }
        StandardStream.out.write("""
            file: \(file)
            functions: \(table.functionCount)
            rows: \(table.rowCount)
            bytes: \(table.memoryBytes)
            compile_ms: \(millis)
            kinds: \(kinds.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))

            """)
    }
}
