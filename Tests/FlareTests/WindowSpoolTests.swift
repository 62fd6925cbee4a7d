@testable import FlareAgent
import Foundation
import Testing

@Suite("window spool")
struct WindowSpoolTests {
    static func window(_ n: Int) -> WindowMetadata {
        WindowMetadata(windowID: "w\(n)", service: "svc", labels: ["n": "\(n)"], startNanos: Int64(n), endNanos: Int64(n + 1), samples: n)
    }

    @Test func aFullSpoolDropsItsOldestWindowsCountsThemAndKeepsTheRestInOrder() throws {
        let directory = TestSupport.temporaryPath("spool-bound-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let payload = [UInt8](repeating: 7, count: 10_000)
        // Room for three and a half windows (all five encode to the same size).
        let size = try WindowSpool.encode(Self.window(0), payload: payload).count
        let spool = try WindowSpool(directory: directory, destinations: ["store"], maxBytes: 3 * size + size / 2)
        var dropped = 0
        for n in 1...5 { dropped += try spool.add(Self.window(n), payload: payload) }
        #expect(dropped == 2 && spool.droppedWindows == 2)
        #expect(spool.bytes == 3 * size && spool.count(for: "store") == 3)
        // A restarted agent finds the same bytes pending.
        #expect(try WindowSpool(directory: directory, destinations: ["store"], maxBytes: spool.maxBytes).bytes == spool.bytes)

        var left: [String] = []
        while let next = spool.oldest(for: "store", warn: { Issue.record("set aside: \($0)") }) {
            #expect(next.payload == payload)
            left.append(next.metadata.windowID)
            spool.remove(next)
        }
        #expect(left == ["w3", "w4", "w5"])
        #expect(spool.bytes == 0)
    }
}
