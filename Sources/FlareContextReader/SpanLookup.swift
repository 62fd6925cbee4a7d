/// The span a thread was serving: what a sample gets labelled with.
public struct SpanLabel: Hashable, Sendable {
    /// The 16-byte trace id as two big-endian halves (W3C byte order).
    public var traceIDHigh: UInt64
    public var traceIDLow: UInt64
    public var spanID: UInt64
    public var localRootSpanID: UInt64
    public var traceFlags: UInt8
    /// The local root span's name, decoded leniently (invalid UTF-8 replaced).
    public var rootSpanName: String

    public init(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, localRootSpanID: UInt64, traceFlags: UInt8,
                rootSpanName: String) {
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.spanID = spanID
        self.localRootSpanID = localRootSpanID
        self.traceFlags = traceFlags
        self.rootSpanName = rootSpanName
    }

    /// 32 lowercase hex digits, as in W3C `traceparent`.
    public var traceIDHex: String { Self.hex(traceIDHigh) + Self.hex(traceIDLow) }
    /// 16 lowercase hex digits.
    public var spanIDHex: String { Self.hex(spanID) }
    public var localRootSpanIDHex: String { Self.hex(localRootSpanID) }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// Why a thread provably ran no span at the sample's time.
public enum NoSpanReason: String, Sendable, CaseIterable {
    case detached, noSpanYet = "no_span_yet", noSlot = "no_slot", noMapping = "no_mapping"
}

/// Why the reader cannot say which span ran: the sample gets no label and the
/// agent counts the reason. The reader never guesses.
public enum UnknownReason: String, Error, Sendable, CaseIterable {
    case claimedAfterSample = "claimed_after_sample"
    case ringOverrun = "ring_overrun"
    case overflow
    case slotChanged = "slot_changed"
    case threadGone = "thread_gone"
    case badHeader = "bad_header"
    case readError = "read_error"
}

/// The answer for one sample (docs/context-abi.md, section 3.6).
public enum SpanLookup: Hashable, Sendable {
    case span(SpanLabel)
    case none(NoSpanReason)
    case unknown(UnknownReason)

    public var label: SpanLabel? {
        if case .span(let label) = self { return label }
        return nil
    }
}
