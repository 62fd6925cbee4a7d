import FlareProcesses
import FlareSampler

/// One frame of an unwound stack.
public struct UnwoundFrame: Hashable, Sendable {
    public var address: UInt64
    public var isKernel: Bool
    /// A return address points just past the call; symbolizers look one byte
    /// back so the frame is attributed to the calling instruction's line.
    public var isReturnAddress: Bool

    public init(address: UInt64, isKernel: Bool, isReturnAddress: Bool) {
        self.address = address; self.isKernel = isKernel; self.isReturnAddress = isReturnAddress
    }

    /// The address to symbolize.
    public var lookupAddress: UInt64 { isReturnAddress && address > 0 ? address - 1 : address }
}

/// A sample's stack, leaf first.
public struct UnwoundStack: Sendable {
    public var frames: [UnwoundFrame]
    /// Why the walk stopped early, if it did; shown as a marker frame.
    public var truncation: Truncation?

    public enum Truncation: String, Sendable, CaseIterable {
        case depthLimit = "[truncated: depth limit]"
        case noUnwindInfo = "[truncated: no unwind info]"
        case badFrame = "[truncated: bad frame]"
        case stackCopyTooSmall = "[truncated: stack copy too small]"
        case unsupportedCFI = "[truncated: unsupported CFI]"
    }

    public init(frames: [UnwoundFrame], truncation: Truncation? = nil) {
        self.frames = frames; self.truncation = truncation
    }
}

/// Turns a sample into its stack. The frame-pointer walker uses the kernel's
/// callchain; a DWARF walker plugs in behind the same protocol.
public protocol StackUnwinder {
    mutating func unwind(_ sample: SampleRecord, process: ProcessState) -> UnwoundStack
}
