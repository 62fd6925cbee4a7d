import FlareProfile

/// pprof files as the store and `flare diff` receive them: gzip or not, then
/// protobuf, then validation; a profile that decodes must survive a round
/// trip, and the readers of a decoded profile (frames, folded stacks, totals)
/// must take whatever validation let through.
enum PprofTarget: FuzzTarget {
    static let name = "pprof"

    /// Small, so that a gzip bomb meets the bound rather than the RSS limit.
    static let maxDecompressed = 1 << 20

    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        guard let profile = try? Profile(pprofFile: bytes, maxDecompressed: maxDecompressed) else { return }
        let encoded = profile.pprofBytes()
        let decoded: Profile?
        do { decoded = try Profile(pprofBytes: encoded) } catch {
            FuzzCheck.require(false, "a decoded profile re-encodes into bytes that do not decode: \(error)")
            return
        }
        FuzzCheck.require(decoded == profile, "a decoded profile changes in an encode-decode round trip")
        if let zipped = try? Profile(pprofFile: profile.gzippedPprof(), maxDecompressed: encoded.count) {
            FuzzCheck.require(zipped == profile, "a decoded profile changes in a gzip round trip")
        } else {
            FuzzCheck.require(false, "a gzipped profile does not decode within its own size")
        }

        var frames = 0
        profile.forEachSampleFrames { _, stack in frames += stack.count }
        _ = profile.folded()
        // As `flare top` and `flare diff` print them.
        let totals = FunctionTotals(profile)
        for entry in totals.topBySelf(10) + totals.topByTotal(10) {
            _ = TextFormat.fixed(totals.percent(entry.selfValue), 2)
            _ = TextFormat.fixed(Double(entry.totalValue), 0)
        }
        if let sample = profile.samples.first { _ = profile.labelString(sample, key: "span_id") }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    PprofTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
