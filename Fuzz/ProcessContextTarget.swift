import FlareContextReader

/// The OTEL_CTX mapping (OTEP 4719) as a reader copies it: the 32-byte header,
/// then the `ProcessContext` protobuf payload. The payload is decoded whatever
/// the header says, so the protobuf reader is fuzzed on its own too.
enum ProcessContextTarget: FuzzTarget {
    static let name = "process-context"

    static func run(_ data: UnsafeRawBufferPointer) {
        let input = FuzzBytes(bytes: data)
        let headerBytes = input.slice(0, ProcessContextLayout.headerSize)
        let rest = input.slice(ProcessContextLayout.headerSize, data.count)
        var payload = rest
        if let header = try? ProcessContextHeader(headerBytes) {
            FuzzCheck.require(header.payloadSize > 0 && header.payloadSize <= Int(ProcessContextLayout.maxPayloadSize),
                              "a header passed with payload size \(header.payloadSize)")
            payload = input.slice(ProcessContextLayout.headerSize, header.payloadSize)
        }
        if let context = try? ProcessContext(payload: payload) {
            _ = context.serviceName
            _ = context.serviceVersion
        }
        _ = try? ProcessContext(payload: Array(rest))
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    ProcessContextTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
