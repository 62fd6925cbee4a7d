import FlareTargetFiles
import Glibc

/// Finds a stripped file's separate debug file the way GDB and perf do: by
/// build-id under `ROOT/.build-id/ab/cdef….debug`, then by `.gnu_debuglink`
/// name under ROOT + the file's folder and, for files the user chose
/// (`--symfs`, offline), beside the file and in its `.debug/` folder.
///
/// For a live process every candidate stays inside the configured debug
/// directory (docs/security.md): the link name is the process's choice, so
/// it must be a plain name, and the process's own folders are not searched.
struct DebugInfoLocator {
    let root: String

    func find(for image: ElfImage, originalPath: String?) -> ElfImage? {
        for (path, rules) in candidates(for: image, originalPath: originalPath) {
            if let debugFile = try? ElfImage(path: path, rules: rules),
               image.buildID == nil || debugFile.buildID == nil || debugFile.buildID == image.buildID {
                return debugFile
            }
        }
        return nil
    }

    /// Paths to try, best first, each with the rules to open it under.
    func candidates(for image: ElfImage, originalPath: String?) -> [(path: String, rules: TargetFiles.Options)] {
        let inDebugRoot = TargetFiles.Options(maxBytes: image.rules.maxBytes, beneath: root)
        var paths: [(String, TargetFiles.Options)] = []
        let hex = image.buildIDHex
        if hex.count > 2 {
            paths.append(("\(root)/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug", inDebugRoot))
        }
        if let link = image.debugLink, Self.isPlainName(link), let original = originalPath, let slash = original.lastIndex(of: "/") {
            let directory = String(original[..<slash])
            // The process's own view of the folder: a container's path without /proc/PID/root.
            let processDirectory = TargetFiles.splitProcessRoot(directory + "/").map { "/" + $0.rest.dropLast() } ?? directory
            paths.append(("\(root)\(processDirectory)/\(link)", inDebugRoot))
            if image.rules.credentials == nil {
                paths += [("\(directory)/\(link)", image.rules), ("\(directory)/.debug/\(link)", image.rules)]
            }
        }
        return paths
    }

    /// A file name with no folder in it: not empty, no "/", not "." or "..".
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("/") && name != "." && name != ".." && !name.utf8.contains(0)
    }
}
