/// The fixed facts of the FLARE_SLOTS v1 layout (docs/context-abi.md, section 3).
public enum SlotsLayout {
    public static let mappingName = "FLARE_SLOTS"
    public static let magic: [UInt8] = Array("FLARESLT".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 64
    public static let slotHeaderSize = 64
    /// The part of a slot header a reader re-reads: owner, generation, claim time, head.
    public static let slotHeaderPrefix = 32
    public static let entrySize = 128
    public static let rootNameMax = 72
    public static let clockMonotonic: UInt32 = 1
    /// Times are x86-64 time-stamp counter ticks (written where the kernel's
    /// clocksource is the TSC); readers map them to CLOCK_MONOTONIC.
    public static let clockTimestampCounter: UInt32 = 256
    public static let maxRingLength: UInt32 = 4096
    public static let maxSlotCount: UInt32 = 65536
    public static let attachedFlag: UInt8 = 0x01
    /// `features` bit (ABI 1.1): releases leave `released_tid` and
    /// `release_time_ns`, and `claim_count` moves with every claim and release.
    public static let featureReleaseTimes: UInt32 = 0x1
    /// Bytes of each slot header a scan reads: the re-read prefix plus `release_time_ns`.
    public static let slotScanPrefix = 40
}

/// Why a FLARE_SLOTS header was rejected.
public enum SlotsHeaderError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated
    case badMagic
    case unsupportedVersion(UInt32)
    case badSizes(headerSize: UInt32, entrySize: UInt32)
    case badClock(UInt32)
    case badRingLength(UInt32)
    case badSlotSize(UInt32)
    case badSlotCount(UInt32)
    case largerThanMapping(needed: UInt64, mapping: UInt64)

    public var description: String {
        switch self {
        case .truncated: "header truncated"
        case .badMagic: "bad magic"
        case .unsupportedVersion(let v): "unsupported version \(v)"
        case .badSizes(let h, let e): "header_size \(h) / entry_size \(e) are not v1's 64 / 128"
        case .badClock(let c): "clock_id \(c) is neither CLOCK_MONOTONIC (1) nor the TSC (256)"
        case .badRingLength(let r): "ring_length \(r) is not a power of two in 1...4096"
        case .badSlotSize(let s): "slot_size \(s) does not match ring_length"
        case .badSlotCount(let c): "slot_count \(c) out of range"
        case .largerThanMapping(let n, let m): "layout needs \(n) bytes, mapping has \(m)"
        }
    }
}

/// A validated FLARE_SLOTS header: the geometry every later read is bounded by.
public struct SlotsHeader: Equatable, Sendable {
    /// The clock of claim and entry times.
    public enum Clock: Equatable, Sendable { case monotonic, timestampCounter }

    public var clock: Clock = .monotonic
    public var slotSize: Int
    public var ringLength: Int
    public var slotCount: Int
    public var overflowCount: UInt64
    /// ABI 1.1 feature bits (0 from a 1.0 writer).
    public var features: UInt32 = 0
    /// Claims and releases so far, when `features` says the writer counts them.
    public var claimCount: UInt64 = 0

    /// Whether releases are timed and `claimCount` can tell that no owner changed.
    public var countsClaims: Bool { features & SlotsLayout.featureReleaseTimes != 0 }

    /// Bytes the layout occupies from the start of the mapping.
    public var totalSize: UInt64 { UInt64(SlotsLayout.headerSize) + UInt64(slotCount) * UInt64(slotSize) }

    /// Offset of slot `index` from the start of the mapping.
    public func slotOffset(_ index: Int) -> UInt64 {
        UInt64(SlotsLayout.headerSize) + UInt64(index) * UInt64(slotSize)
    }

    /// Validates the 64-byte header as section 3.6 step 2 says.
    /// - Parameter mappingSize: the mapping's size in /proc/PID/maps.
    public init(_ bytes: UnsafeRawBufferPointer, mappingSize: UInt64) throws(SlotsHeaderError) {
        let r = ByteReader(bytes: bytes)
        guard bytes.count >= SlotsLayout.headerSize, let version = r.u32(8), let headerSize = r.u32(12),
              let slotSize = r.u32(16), let ring = r.u32(20), let entrySize = r.u32(24), let clock = r.u32(28),
              let count = r.u32(32), let features = r.u32(36), let overflow = r.u64(40), let claims = r.u64(48)
        else { throw .truncated }
        guard bytes.prefix(8).elementsEqual(SlotsLayout.magic) else { throw .badMagic }
        guard version == SlotsLayout.version else { throw .unsupportedVersion(version) }
        guard headerSize == SlotsLayout.headerSize, entrySize == SlotsLayout.entrySize else {
            throw .badSizes(headerSize: headerSize, entrySize: entrySize)
        }
        switch clock {
        case SlotsLayout.clockMonotonic: self.clock = .monotonic
        case SlotsLayout.clockTimestampCounter: self.clock = .timestampCounter
        default: throw .badClock(clock)
        }
        guard ring >= 1, ring <= SlotsLayout.maxRingLength, ring & (ring - 1) == 0 else { throw .badRingLength(ring) }
        guard UInt64(slotSize) == UInt64(SlotsLayout.slotHeaderSize) + UInt64(ring) * UInt64(SlotsLayout.entrySize) else {
            throw .badSlotSize(slotSize)
        }
        guard count >= 1, count <= SlotsLayout.maxSlotCount else { throw .badSlotCount(count) }
        self.slotSize = Int(slotSize)
        self.ringLength = Int(ring)
        self.slotCount = Int(count)
        self.overflowCount = overflow
        self.features = features
        self.claimCount = claims
        guard totalSize <= mappingSize else { throw .largerThanMapping(needed: totalSize, mapping: mappingSize) }
    }

    public init(slotSize: Int, ringLength: Int, slotCount: Int, overflowCount: UInt64, clock: Clock = .monotonic) {
        self.clock = clock
        self.slotSize = slotSize
        self.ringLength = ringLength
        self.slotCount = slotCount
        self.overflowCount = overflowCount
    }
}

/// The start of a slot: who owns it (or last released it), since when, and how far it wrote.
public struct SlotHeader: Equatable, Sendable {
    public var ownerTID: UInt32
    /// ABI 1.1: the owner that released the slot, while `ownerTID` is 0.
    public var releasedTID: UInt32
    public var generation: UInt64
    public var claimTimeNanos: UInt64
    public var head: UInt64
    /// ABI 1.1: when the owner released the slot; 0 while owned, and when
    /// the bytes end before offset 40 (a re-read prefix).
    public var releaseTimeNanos: UInt64

    public init?(_ bytes: UnsafeRawBufferPointer) {
        let r = ByteReader(bytes: bytes)
        guard let owner = r.u32(0), let released = r.u32(4), let generation = r.u64(8), let claim = r.u64(16), let head = r.u64(24)
        else { return nil }
        self.ownerTID = owner
        self.releasedTID = released
        self.generation = generation
        self.claimTimeNanos = claim
        self.head = head
        self.releaseTimeNanos = r.u64(32) ?? 0
    }

    /// The slot is thread `tid`'s: it owns it, or it released it (a 1.0
    /// writer leaves `released_tid` 0, which names no thread).
    public func belongs(to tid: UInt32) -> Bool {
        ownerTID == tid || (ownerTID == 0 && releasedTID == tid && tid != 0)
    }

    /// When `tid` released the slot, if this header shows it released.
    public func releaseTime(of tid: UInt32) -> UInt64? {
        ownerTID == 0 && releasedTID == tid && tid != 0 && releaseTimeNanos != 0 ? releaseTimeNanos : nil
    }
}
