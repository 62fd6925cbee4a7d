import FlareFlameGraph
import FlareProfile
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import FlareStore

/// `GET /api/v1/versions`: a service's deploys (`service.version` series
/// labels) with the first and last time each was seen, on both backends.
@Suite("Versions", .serialized)
struct VersionTests {
    typealias S = StoreTestSupport.Sample
    typealias H = HTTPTestSupport
    static let t0: Int64 = 1_700_000_000_000_000_000
    static let tenSeconds: Int64 = 10_000_000_000
    static let samples = [S(stack: ["main", "serve"], count: 5)]

    /// Version "1.10" deployed after "1.9" (so name order is not time order),
    /// 1.9 on two hosts, plus a series without a version and another service.
    static func fill(_ storage: any ProfileStorage) async throws {
        let windows: [(String, [(String, String)], Int64)] = [
            ("w1", [("host.name", "h1"), ("service.version", "1.9")], 0),
            ("w2", [("host.name", "h2"), ("service.version", "1.9")], 1),
            ("w3", [("host.name", "h1"), ("service.version", "1.9")], 2),
            ("w4", [("host.name", "h1"), ("service.version", "1.10")], 10),
            ("w5", [("host.name", "h1"), ("service.version", "1.10")], 11),
            ("w6", [("host.name", "h3")], 12),
        ]
        for (key, labels, slot) in windows {
            #expect(try await storage.insert(try StoreTestSupport.window(Self.samples, key: key, labels: labels, start: Self.t0 + slot * Self.tenSeconds)) == .stored)
        }
        _ = try await storage.insert(try StoreTestSupport.window(Self.samples, key: "other", service: "billing",
                                                                  labels: [("service.version", "7")], start: Self.t0))
    }

    @Test("versions come oldest first with first/last seen and window counts", arguments: Backend.allCases)
    func versionsFromStorage(backend: Backend) async throws {
        guard let storage = try await backend.make() else { return }
        defer { Task { try? await storage.close() } }
        try await Self.fill(storage)
        let engine = QueryEngine(storage: storage)
        let versions = try await engine.versions(service: "checkout")
        #expect(versions == [
            .init(version: "1.9", firstNanos: Self.t0, lastNanos: Self.t0 + 3 * Self.tenSeconds, windows: 3),
            .init(version: "1.10", firstNanos: Self.t0 + 10 * Self.tenSeconds, lastNanos: Self.t0 + 12 * Self.tenSeconds, windows: 2),
        ])
        #expect(try await engine.versions(service: "billing").map(\.version) == ["7"])
        await #expect(throws: StoreError.self) { try await engine.versions(service: "nosuch") }
    }

    @Test("GET /api/v1/versions: JSON shape, 404 for an unknown service, 400 without one", arguments: Backend.allCases)
    func versionsOverHTTP(backend: Backend) async throws {
        guard let storage = try await backend.make() else { return }
        try await Self.fill(storage)
        try await H.withStore(storage: storage) { client, _ in
            let response = try await H.get(client, "/api/v1/versions?service=checkout")
            #expect(response.status == .ok)
            #expect(H.text(response) == """
                {"service":"checkout","versions":[{"version":"1.9","first_ns":\(Self.t0),"last_ns":\(Self.t0 + 3 * Self.tenSeconds),"windows":3},\
                {"version":"1.10","first_ns":\(Self.t0 + 10 * Self.tenSeconds),"last_ns":\(Self.t0 + 12 * Self.tenSeconds),"windows":2}]}
                """)
            let unknown = try await H.get(client, "/api/v1/versions?service=nosuch")
            #expect(unknown.status == .notFound)
            #expect((try H.json(unknown)["error"] as? String)?.contains("unknown service \"nosuch\"") == true)
            #expect(try await H.get(client, "/api/v1/versions").status == .badRequest)
        }
    }

    @Test("a profile whose samples carry one service_version label is stored under that version")
    func versionFromTheProcessContext() async throws {
        @Sendable func pprof(_ versions: [String]) -> [UInt8] {
            var builder = ProfileBuilder.cpuProfile(periodNanos: StoreTestSupport.period, timeNanos: Self.t0, durationNanos: Self.tenSeconds)
            let function = builder.function(name: "main", file: "main.c")
            let location = builder.location(mappingID: 0, address: 0, lines: [Profile.Line(functionID: function)])
            for version in versions {
                let label = builder.label("service_version", version)
                builder.addSample(locationIDs: [location], values: [1, StoreTestSupport.period], labels: [label])
            }
            return builder.profile.gzippedPprof()
        }
        try await H.withStore { client, _ in
            #expect(try await H.post(client, "/api/v1/profiles?service=app&window_id=1", pprof(["2.0", "2.0"])).status == .ok)
            // Mixed versions in one window: no version label rather than a wrong one.
            #expect(try await H.post(client, "/api/v1/profiles?service=app&window_id=2", pprof(["2.0", "2.1"])).status == .ok)
            // The request's own label wins.
            let labels = H.query(#"{service.version="3.0"}"#)
            #expect(try await H.post(client, "/api/v1/profiles?service=app&window_id=3&labels=\(labels)", pprof(["2.0"])).status == .ok)
            let versions = try H.json(try await H.get(client, "/api/v1/versions?service=app"))["versions"] as? [[String: Any]] ?? []
            #expect(versions.compactMap { $0["version"] as? String } == ["2.0", "3.0"])
        }
    }

    @Test("the query token guards /api/v1/versions")
    func versionsNeedTheQueryToken() async throws {
        try await H.withStore({ $0.queryToken = "q" }) { client, storage in
            try await Self.fill(storage)
            #expect(try await H.get(client, "/api/v1/versions?service=checkout").status == .unauthorized)
            var headers = HTTPFields()
            headers[.authorization] = "Bearer q"
            #expect(try await H.get(client, "/api/v1/versions?service=checkout", headers: headers).status == .ok)
        }
    }
}
