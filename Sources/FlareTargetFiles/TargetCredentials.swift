import Glibc

/// Who a profiled process runs as: its effective uid and groups, from
/// `/proc/PID/status`. The files the agent reads on its behalf are checked
/// against them, so the agent (root) shows nothing the target's own user
/// could not read.
public struct TargetCredentials: Sendable, Equatable {
    public var uid: UInt32
    /// The effective gid first, then the supplementary groups.
    public var gids: [UInt32]

    /// An unprivileged user's: for a process that is gone, whose own credentials are unknown.
    public static let nobody = TargetCredentials(uid: 65534, gids: [65534])

    public init(uid: UInt32, gids: [UInt32]) {
        self.uid = uid
        self.gids = gids
    }

    /// The credentials of process `pid`, or nil once it is gone.
    public static func of(pid: Int32) -> TargetCredentials? {
        guard let file = fopen("/proc/\(pid)/status", "re") else { return nil }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: 8192)
        let n = fread(&bytes, 1, bytes.count, file)
        return TargetCredentials(status: String(decoding: bytes[..<max(n, 0)], as: UTF8.self))
    }

    /// Parses the `Uid:`, `Gid:` and `Groups:` lines (real, effective, saved, fs ids).
    public init?(status: String) {
        var uid: UInt32?, gid: UInt32?, groups: [UInt32] = []
        for line in status.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let key = fields.first else { continue }
            switch key {
            case "Uid:" where fields.count > 2: uid = UInt32(fields[2])
            case "Gid:" where fields.count > 2: gid = UInt32(fields[2])
            case "Groups:": groups = fields.dropFirst().compactMap { UInt32($0) }
            default: continue
            }
        }
        guard let uid, let gid else { return nil }
        self.uid = uid
        self.gids = [gid] + groups.filter { $0 != gid }
    }

    /// Whether this user may read a file with that owner, group and mode,
    /// by the mode bits (root reads everything; ACLs are not consulted, so a
    /// file an ACL alone opens to the user is refused).
    public func mayRead(owner: UInt32, group: UInt32, mode: UInt32) -> Bool {
        if uid == 0 { return true }
        if owner == uid { return mode & 0o400 != 0 }
        if gids.contains(group) { return mode & 0o040 != 0 }
        return mode & 0o004 != 0
    }
}
