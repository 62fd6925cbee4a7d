import Foundation
import Testing
@testable import FlareStore

@Suite("Crash safety and load", .serialized)
struct CrashAndLoadTests {
    static let python = "/usr/bin/python3"

    @Test("kill -9 during ingest: every acknowledged profile survives and the database opens cleanly")
    func killDuringIngest() async throws {
        let dataDir = StoreTestSupport.temporaryDirectory("crash")
        let acked = StoreTestSupport.scratch.appendingPathComponent("acked-\(UUID().uuidString.prefix(6)).txt").path
        _ = FileManager.default.createFile(atPath: acked, contents: nil)
        let store = try LiveStore(arguments: ["--data-dir", dataDir])
        let client = Process()
        client.executableURL = URL(fileURLWithPath: Self.python)
        client.arguments = [StoreTestSupport.clientScript("crash_ingest.py"), "--port", "\(store.port)", "--acked", acked, "--seconds", "60"]
        client.standardOutput = FileHandle.nullDevice
        try client.run()
        // Let it ingest for a while, then kill the store mid-stream.
        try await Task.sleep(for: .seconds(4))
        store.kill9()
        client.waitUntilExit()

        let lines = try String(contentsOfFile: acked, encoding: .utf8).split(separator: "\n")
        let windows = lines.map { line -> (Int, Int) in
            let parts = line.split(separator: " ")
            return (Int(parts[0].dropFirst())!, Int(parts[1])!)
        }
        #expect(windows.count > 10, "the client should have stored some windows before the kill")

        let restarted = try LiveStore(arguments: ["--data-dir", dataDir])
        let base = try await restarted.json("/api/v1/services")
        let crash = (base["services"] as? [[String: Any]])?.first { $0["name"] as? String == "crash" }
        let storedWindows = crash?["windows"] as? Int ?? 0
        #expect(storedWindows >= windows.count)
        #expect(storedWindows <= windows.count + 1, "at most the one in flight may be stored without an answer")
        // Each acknowledged window, by its time slot, holds exactly its samples.
        let first = crash?["first_ns"] as? Int ?? 0
        let from = first / 1_000_000_000
        let totals = try await restarted.json("/api/v1/totals?service=crash&from=\(from)&until=\(from + 10 * (windows.count + 5))&step=10s")
        let points = totals["points"] as? [[Int]] ?? []
        for (index, samples) in windows {
            #expect(index < points.count && points[index][1] == samples, "window c\(index)")
        }
        // Writes still work after the restart.
        let health = try await restarted.request("/health")
        #expect(health.status == 200)
        #expect(restarted.stop() == 0)

        let storage = try SQLiteStorage(directory: dataDir)
        #expect(try await storage.integrityCheck() == "ok")
        try await storage.close()
    }

    @Test("8 ingesting and 4 querying clients for 60 s: no errors, no lost or duplicated profile")
    func concurrency() async throws {
        let seconds = ProcessInfo.processInfo.environment["FLARE_LOAD_SECONDS"] ?? "60"
        let store = try LiveStore(arguments: ["--data-dir", StoreTestSupport.temporaryDirectory("load")])
        defer { store.stop() }
        let result = try StoreTestSupport.run(Self.python, [StoreTestSupport.clientScript("load.py"), "--port", "\(store.port)",
                                                            "--writers", "8", "--readers", "4", "--seconds", seconds], timeout: 600)
        print("load (SQLite): \(result.stdout)")
        #expect(result.status == 0, "load.py: \(result.stdout)\n\(result.stderr)\nstore log:\n\(store.log.suffix(3000))")
        #expect(store.stop() == 0)
    }

    @Test("two stores on one PostgreSQL database share ingest and queries")
    func postgresReplicas() async throws {
        guard try StoreTestSupport.requireOrSkip("PostgreSQL (FLARE_TEST_POSTGRES_URL)", available: StoreTestSupport.postgresURL != nil,
                                                 hint: "scripts/test starts a throwaway cluster and sets it") else { return }
        let url = try Backend.freshDatabase()
        let a = try LiveStore(arguments: ["--database", url])
        defer { a.stop() }
        let b = try LiveStore(arguments: ["--database", url])
        defer { b.stop() }
        let now = Int64(Date().timeIntervalSince1970) * 1_000_000_000
        let profile = StoreTestSupport.profile([.init(stack: ["main", "work"], count: 9)], timeNanos: now - 60_000_000_000).gzippedPprof()
        // The same window through both stores is stored once.
        #expect(try await a.request("/api/v1/profiles?service=pg&window_id=one", method: "POST", body: Data(profile)).status == 200)
        let again = try JSONSerialization.jsonObject(with: try await b.request("/api/v1/profiles?service=pg&window_id=one", method: "POST", body: Data(profile)).body) as? [String: Any]
        #expect(again?["duplicate"] as? Bool == true)
        let top = try await b.json("/api/v1/top?service=pg&from=now-1h&until=now")
        #expect(top["total"] as? Int == 9)
        let short = try StoreTestSupport.run(Self.python, [StoreTestSupport.clientScript("load.py"), "--port", "\(a.port)",
                                                           "--writers", "4", "--readers", "2", "--seconds", "8", "--service", "pgload"], timeout: 300)
        #expect(short.status == 0, "load.py on PostgreSQL: \(short.stdout)\n\(short.stderr)")
    }
}
