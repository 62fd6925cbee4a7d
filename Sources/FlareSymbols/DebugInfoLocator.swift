import Glibc

/// Finds a stripped file's separate debug file the way GDB and perf do: by
/// build-id under `ROOT/.build-id/ab/cdef….debug`, then by `.gnu_debuglink`
/// name beside the file, in its `.debug/` folder, and under ROOT + its folder.
struct DebugInfoLocator {
    let root: String

    func find(for image: ElfImage, originalPath: String?) -> ElfImage? {
        for path in candidates(for: image, originalPath: originalPath) where access(path, R_OK) == 0 {
            if let debugFile = try? ElfImage(path: path),
               image.buildID == nil || debugFile.buildID == nil || debugFile.buildID == image.buildID {
                return debugFile
            }
        }
        return nil
    }

    func candidates(for image: ElfImage, originalPath: String?) -> [String] {
        var paths: [String] = []
        let hex = image.buildIDHex
        if hex.count > 2 {
            paths.append("\(root)/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug")
        }
        if let link = image.debugLink, let original = originalPath, let slash = original.lastIndex(of: "/") {
            let directory = String(original[..<slash])
            paths += ["\(directory)/\(link)", "\(directory)/.debug/\(link)", "\(root)\(directory)/\(link)"]
        }
        return paths
    }
}
