import CFlareContext

/// A span as the context ABI publishes it: trace and span ids, the local root
/// span's id and name, W3C trace flags. Immutable and made once per span, so
/// attaching it again (after a suspension, or when a child scope ends) costs
/// no allocation and no encoding.
public final class FlareSpanContext: Sendable, Hashable, CustomStringConvertible {
    /// The trace id in W3C byte order: 16 bytes.
    public let traceID: [UInt8]
    /// The span id: 8 bytes.
    public let spanID: [UInt8]
    /// The process-local root span's id: 8 bytes.
    public let localRootSpanID: [UInt8]
    public let traceFlags: UInt8
    /// The local root span's name, which profiles are grouped by.
    public let rootSpanName: String

    /// All ids in one buffer (trace 0..<16, span 16..<24, root 24..<32) and the
    /// NUL-terminated name after them, so publishing touches one allocation.
    @usableFromInline let packed: [UInt8]

    /// - Parameters: ids as bytes in W3C order; ids of the wrong length make this nil.
    public init?(traceID: [UInt8], spanID: [UInt8], localRootSpanID: [UInt8]? = nil, traceFlags: UInt8 = 1, rootSpanName: String) {
        let root = localRootSpanID ?? spanID
        guard traceID.count == 16, spanID.count == 8, root.count == 8 else { return nil }
        self.traceID = traceID
        self.spanID = spanID
        self.localRootSpanID = root
        self.traceFlags = traceFlags
        self.rootSpanName = rootSpanName
        packed = traceID + spanID + root + Array(rootSpanName.utf8.prefix(Self.maxNameBytes)) + [0]
    }

    /// Ids as integers (trace id high and low halves, big-endian as in W3C).
    public convenience init(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, localRootSpanID: UInt64? = nil,
                            traceFlags: UInt8 = 1, rootSpanName: String) {
        self.init(traceID: Self.bytes(traceIDHigh) + Self.bytes(traceIDLow), spanID: Self.bytes(spanID),
                  localRootSpanID: Self.bytes(localRootSpanID ?? spanID), traceFlags: traceFlags, rootSpanName: rootSpanName)!
    }

    /// Ids from W3C hex (32 and 16 hex digits); nil when malformed.
    public convenience init?(traceIDHex: String, spanIDHex: String, localRootSpanIDHex: String? = nil, traceFlags: UInt8 = 1,
                             rootSpanName: String) {
        guard let trace = Self.parseHex(traceIDHex, bytes: 16), let span = Self.parseHex(spanIDHex, bytes: 8) else { return nil }
        let root = localRootSpanIDHex.flatMap { Self.parseHex($0, bytes: 8) }
        if localRootSpanIDHex != nil && root == nil { return nil }
        self.init(traceID: trace, spanID: span, localRootSpanID: root, traceFlags: traceFlags, rootSpanName: rootSpanName)
    }

    /// The writer cuts names to 72 bytes on a character boundary; keep the
    /// copy bounded so a huge name costs nothing extra.
    static let maxNameBytes = 80

    @inlinable @discardableResult
    func publish() -> Bool {
        packed.withUnsafeBufferPointer { p in
            let base = p.baseAddress!
            return base.withMemoryRebound(to: CChar.self, capacity: p.count) { chars in
                cflarecontext_span_attach(base, base + 16, base + 24, traceFlags, chars + 32) == 0
            }
        }
    }

    public var traceIDHex: String { Self.hex(traceID) }
    public var spanIDHex: String { Self.hex(spanID) }
    public var localRootSpanIDHex: String { Self.hex(localRootSpanID) }
    public var description: String { "\(traceIDHex)/\(spanIDHex) root \(localRootSpanIDHex) \"\(rootSpanName)\"" }

    public static func == (a: FlareSpanContext, b: FlareSpanContext) -> Bool {
        a.packed == b.packed && a.traceFlags == b.traceFlags
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(packed) }

    static func bytes(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) } }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func parseHex(_ text: String, bytes count: Int) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count == count * 2 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for i in stride(from: 0, to: utf8.count, by: 2) {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
