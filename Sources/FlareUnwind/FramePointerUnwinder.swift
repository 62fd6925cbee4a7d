import FlareProcesses
import FlareSampler

/// Reads the callchain the kernel collected by walking frame pointers at
/// sample time: kernel frames, then user frames, separated by context markers.
public struct FramePointerUnwinder: StackUnwinder {
    /// Values at or above this are PERF_CONTEXT_* markers, not addresses.
    static let contextMarkerFloor = UInt64(bitPattern: -4095)
    static let contextKernel = UInt64(bitPattern: -128)
    static let contextUser = UInt64(bitPattern: -512)

    public let maxDepth: Int

    public init(maxDepth: Int = 127) { self.maxDepth = maxDepth }

    public mutating func unwind(_ sample: SampleRecord, process: ProcessState) -> UnwoundStack {
        var frames: [UnwoundFrame] = []
        frames.reserveCapacity(sample.callchain.count)
        var inKernel = sample.isKernelIP
        var firstOfContext = true
        for address in sample.callchain {
            if address >= Self.contextMarkerFloor {
                if address == Self.contextKernel { inKernel = true; firstOfContext = true }
                else if address == Self.contextUser { inKernel = false; firstOfContext = true }
                continue
            }
            // Frame-pointer walks of code without frame pointers end in small junk values.
            if !inKernel && address < 4096 { break }
            frames.append(UnwoundFrame(address: address, isKernel: inKernel, isReturnAddress: !firstOfContext))
            firstOfContext = false
        }
        if frames.isEmpty {
            frames.append(UnwoundFrame(address: sample.ip, isKernel: sample.isKernelIP, isReturnAddress: false))
        }
        return UnwoundStack(frames: frames, truncation: frames.count >= maxDepth ? .depthLimit : nil)
    }
}
