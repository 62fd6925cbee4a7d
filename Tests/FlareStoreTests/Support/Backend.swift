import Foundation
@testable import FlareStore

/// The two storage backends the same suite runs against.
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite, postgres

    var description: String { rawValue }

    /// A fresh, empty storage; nil (with a printed skip) when PostgreSQL is not
    /// available outside CI. Under CI=true a missing PostgreSQL fails the test.
    func make() async throws -> (any ProfileStorage)? {
        switch self {
        case .sqlite:
            return try SQLiteStorage(directory: StoreTestSupport.temporaryDirectory("sqlite"))
        case .postgres:
            guard try StoreTestSupport.requireOrSkip("PostgreSQL (FLARE_TEST_POSTGRES_URL)", available: StoreTestSupport.postgresURL != nil,
                                                     hint: "scripts/test starts a throwaway cluster and sets it") else { return nil }
            let url = try Self.freshDatabase()
            return try await PostgresStorage(url: url)
        }
    }

    /// Creates an empty database beside the one in FLARE_TEST_POSTGRES_URL and returns its URL.
    static func freshDatabase() throws -> String {
        guard let base = StoreTestSupport.postgresURL, var components = URLComponents(string: base) else {
            throw TestError("FLARE_TEST_POSTGRES_URL is not set")
        }
        let name = "flare_test_\(UUID().uuidString.prefix(8).lowercased())"
        let psql = ["/usr/bin/psql", "/usr/lib/postgresql/15/bin/psql"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "psql"
        let result = try StoreTestSupport.run(psql, [base, "-v", "ON_ERROR_STOP=1", "-q", "-c", "CREATE DATABASE \(name)"])
        guard result.status == 0 else { throw TestError("CREATE DATABASE failed: \(result.stderr)") }
        components.path = "/" + name
        return components.string!
    }
}
