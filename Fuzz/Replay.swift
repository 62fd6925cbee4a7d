#if !FUZZING
import Glibc

/// The fuzz targets without libFuzzer: replays inputs through them, so that a
/// saved crash can be run under a debugger and the corpus stays a test.
///
///     FlareFuzz                         every target over Fuzz/corpus/<target>/
///     FlareFuzz TARGET [FILE|DIR]...    one target over the given inputs
///
/// `scripts/fuzz` builds each target with libFuzzer and AddressSanitizer instead.
@main
enum Replay {
    struct Target {
        let name: String
        let run: (UnsafeRawBufferPointer) -> Void
        init<T: FuzzTarget>(_: T.Type) {
            name = T.name
            run = { T.run($0) }
        }
    }

    static var targets: [Target] {
        [
            Target(PprofTarget.self), Target(SlotsTarget.self), Target(ProcessContextTarget.self), Target(ProcTextTarget.self),
            Target(PerfRecordsTarget.self), Target(PerfDataTarget.self), Target(PerfMapTarget.self), Target(ElfTarget.self),
            Target(DwarfTarget.self),
        ]
    }

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first else {
            for target in targets { replay(target, ["Fuzz/corpus/\(target.name)"]) }
            return
        }
        guard let target = targets.first(where: { $0.name == name }) else {
            FuzzCheck.printError("usage: FlareFuzz [TARGET [FILE|DIR]...]; targets: \(targets.map(\.name).joined(separator: " "))")
            exit(2)
        }
        replay(target, arguments.count > 1 ? Array(arguments.dropFirst()) : ["Fuzz/corpus/\(name)"])
    }

    static func replay(_ target: Target, _ paths: [String]) {
        var count = 0
        for path in paths.flatMap(files) {
            guard let bytes = read(path) else {
                FuzzCheck.printError("\(target.name): cannot read \(path)")
                exit(1)
            }
            bytes.withUnsafeBytes { target.run($0) }
            count += 1
        }
        print("\(target.name): \(count) inputs replayed")
    }

    /// The regular files under `path`, or `path` itself.
    static func files(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [path] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if !name.hasPrefix(".") { names.append("\(path)/\(name)") }
        }
        return names.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rbe") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[..<n])
        }
        return bytes
    }
}
#endif
