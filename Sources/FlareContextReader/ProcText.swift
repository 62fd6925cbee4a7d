import Glibc

/// Parsers for the /proc text files the reader consults. Pure: the caller reads the files.
public enum ProcText {
    /// A line of /proc/PID/maps naming one of the context mappings.
    public struct NamedMapping: Equatable, Sendable {
        public var start: UInt64
        public var end: UInt64
        public var path: String
        public var size: UInt64 { end - start }
    }

    /// The spellings under which /proc/PID/maps shows a mapping called `name`.
    public static func pathNames(_ name: String) -> Set<String> {
        ["/memfd:\(name)", "/memfd:\(name) (deleted)", "[anon:\(name)]", "[anon_shmem:\(name)]"]
    }

    /// The mappings in `maps` (the text of /proc/PID/maps) named `name`.
    ///
    /// The agent rescans every sampled process's maps, and most have no such
    /// mapping: the name is searched for in the bytes, and only the lines
    /// holding it are parsed.
    public static func mappings(named name: String, in maps: String) -> [NamedMapping] {
        var maps = maps
        let lines = maps.withUTF8 { text in linesContaining(Array(name.utf8), in: text) }
        guard !lines.isEmpty else { return [] }
        let wanted = pathNames(name)
        var found: [NamedMapping] = []
        for line in lines {
            // start-end perms offset dev inode   path (the path may contain spaces)
            var fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6 else { continue }
            fields[5] = fields[5].drop { $0 == " " }
            let path = String(fields[5])
            guard wanted.contains(path) else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt64(bounds[0], radix: 16), let end = UInt64(bounds[1], radix: 16),
                  end > start
            else { continue }
            found.append(NamedMapping(start: start, end: end, path: path))
        }
        return found
    }

    /// Each line of `text` that contains `needle`, once.
    private static func linesContaining(_ needle: [UInt8], in text: UnsafeBufferPointer<UInt8>) -> [Substring] {
        guard let base = text.baseAddress, !needle.isEmpty else { return [] }
        var lines: [Substring] = []
        var index = 0
        while index < text.count {
            guard text.count - index >= needle.count,
                  let hit = memchr(base + index, Int32(needle[0]), text.count - index - needle.count + 1) else { break }
            let at = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            guard needle.withUnsafeBytes({ memcmp(base + at, $0.baseAddress!, needle.count) }) == 0 else {
                index = at + 1
                continue
            }
            var start = at
            while start > index && text[start - 1] != 0x0a { start -= 1 }
            var end = at + needle.count
            while end < text.count && text[end] != 0x0a { end += 1 }
            lines.append(Substring(String(decoding: UnsafeBufferPointer(rebasing: text[start..<end]), as: UTF8.self)))
            index = end + 1
        }
        return lines
    }

    /// The innermost id on the `NSpid:` line of /proc/PID/task/TID/status: the
    /// tid as the thread itself sees it. nil when the line is absent (Linux < 4.1).
    public static func innermostNSpid(status: String) -> UInt32? {
        for line in status.split(separator: "\n") where line.hasPrefix("NSpid:") {
            let ids = line.dropFirst("NSpid:".count).split(whereSeparator: { $0 == " " || $0 == "\t" })
            return ids.last.flatMap { UInt32($0) }
        }
        return nil
    }

    /// The number of ids on the `NSpid:` line: 1 when the process is in the reader's pid namespace.
    public static func nspidDepth(status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix("NSpid:") {
            return line.dropFirst("NSpid:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).count
        }
        return nil
    }
}
