/// Merging old windows into coarser ones, shared by both backends.
enum Downsampler {
    struct Key: Hashable { var series: Int64; var bucket: Int64 }

    struct Window {
        var id: Int64
        var series: Int64
        var start: Int64
        var end: Int64
        var value: StackValue
        var blob: [UInt8]
    }

    static func key(_ window: Window, resolution: Int64) -> Key {
        Key(series: window.series, bucket: window.start / resolution)
    }

    static func merge(_ windows: [Window]) throws -> Window {
        var stacks: [Int64: StackValue] = [:]
        var total = StackValue.zero
        for window in windows {
            try WindowBlob.add(window.blob, into: &stacks)
            total.add(window.value)
        }
        return Window(id: 0, series: windows[0].series, start: windows.map(\.start).min()!, end: windows.map(\.end).max()!,
                      value: total, blob: WindowBlob.encode(stacks.map { ($0.key, $0.value) }))
    }
}
