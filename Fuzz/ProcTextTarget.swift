import FlareContextReader

/// The /proc text the span reader parses: a process's maps (the lines naming
/// the context mappings) and a thread's status (its `NSpid:` line).
enum ProcTextTarget: FuzzTarget {
    static let name = "proc-text"

    static func run(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        for name in [SlotsLayout.mappingName, ProcessContextLayout.mappingName] {
            let wanted = ProcText.pathNames(name)
            for mapping in ProcText.mappings(named: name, in: text) {
                FuzzCheck.require(mapping.end > mapping.start, "a mapping \(mapping) that ends before it starts")
                FuzzCheck.require(wanted.contains(mapping.path), "a mapping \(mapping) under another name than \(name)")
            }
        }
        let innermost = ProcText.innermostNSpid(status: text)
        let depth = ProcText.nspidDepth(status: text)
        if innermost != nil { FuzzCheck.require((depth ?? 0) >= 1, "an innermost NSpid \(innermost!) on a line of \(depth ?? 0) ids") }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    ProcTextTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
