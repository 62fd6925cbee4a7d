import FlareFlameGraph
import FlareProfile
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
@testable import FlareStore

/// Runs a store application in-process against a fresh SQLite directory.
enum HTTPTestSupport {
    static func withStore<T: Sendable>(
        _ configure: (inout StoreConfiguration) -> Void = { _ in },
        storage: (any ProfileStorage)? = nil,
        _ body: @Sendable @escaping (any TestClientProtocol, any ProfileStorage) async throws -> T
    ) async throws -> T {
        var configuration = StoreConfiguration(dataDirectory: StoreTestSupport.temporaryDirectory("http"))
        configuration.port = 0
        // Test data is from 2023: keep it.
        configuration.retentionNanos = 0
        configuration.downsampleAfterNanos = 0
        configure(&configuration)
        let store = try storage ?? SQLiteStorage(directory: configuration.dataDirectory)
        var logger = Logger(label: "flare.store.test")
        logger.logLevel = .warning
        let app = StoreServer.application(storage: store, configuration: configuration, logger: logger)
        let result = try await app.test(.router) { client in try await body(client, store) }
        try? await store.close()
        return result
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        let data = Data(response.body.readableBytesView)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestError("not a JSON object: \(String(decoding: data, as: UTF8.self))")
        }
        return object
    }

    static func text(_ response: TestResponse) -> String { String(decoding: response.body.readableBytesView, as: UTF8.self) }

    static func post(_ client: any TestClientProtocol, _ uri: String, _ body: [UInt8], headers: HTTPFields = [:]) async throws -> TestResponse {
        try await client.executeRequest(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: body))
    }

    static func get(_ client: any TestClientProtocol, _ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await client.executeRequest(uri: uri, method: .get, headers: headers, body: nil)
    }

    static func query(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
}
