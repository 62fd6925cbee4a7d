import FlareFlameGraph
import Foundation

/// The labels of a series: bounded resource labels such as `host.name` or
/// `service.version`, sorted by name. Span and trace ids are never series
/// labels: they stay per sample, so the number of series stays small.
public struct LabelSet: Hashable, Sendable, Comparable {
    public struct Label: Hashable, Sendable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
    }

    public private(set) var labels: [Label]

    public static let maxLabels = 32
    public static let maxNameBytes = 128
    public static let maxValueBytes = 1024

    /// Validates names and sizes; a later duplicate name is an error.
    public init(_ pairs: [(String, String)]) throws(StoreError) {
        guard pairs.count <= Self.maxLabels else {
            throw .badRequest("too many labels (\(pairs.count)): a series may have at most \(Self.maxLabels); keep per-request ids out of series labels")
        }
        var seen = Set<String>()
        var labels: [Label] = []
        for (name, value) in pairs {
            try Self.validateName(name)
            guard value.utf8.count <= Self.maxValueBytes else {
                throw .badRequest("the value of label \(JSONText.quoted(name)) is longer than \(Self.maxValueBytes) bytes")
            }
            guard seen.insert(name).inserted else { throw .badRequest("label \(JSONText.quoted(name)) is given twice") }
            labels.append(Label(name, value))
        }
        self.labels = labels.sorted { $0.name < $1.name }
    }

    public init() { labels = [] }

    /// Label names start with a letter or `_` and hold letters, digits, `_` and `.`
    /// (OpenTelemetry resource attributes such as `service.version` keep their dots).
    public static func validateName(_ name: String) throws(StoreError) {
        let bytes = Array(name.utf8)
        func isStart(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 }
        func isPart(_ b: UInt8) -> Bool { isStart(b) || (b >= 48 && b <= 57) || b == 46 }
        guard !bytes.isEmpty, bytes.count <= maxNameBytes, isStart(bytes[0]), bytes.allSatisfy(isPart) else {
            throw .badRequest("invalid label name \(JSONText.quoted(name)): use letters, digits, '_' and '.', starting with a letter or '_', at most \(maxNameBytes) bytes")
        }
    }

    public subscript(name: String) -> String? { labels.first { $0.name == name }?.value }

    public func removing(_ names: Set<String>) -> LabelSet {
        var copy = self
        copy.labels.removeAll { names.contains($0.name) }
        return copy
    }

    /// A canonical JSON object, used as the series key in the database.
    public var canonicalJSON: String {
        "{" + labels.map { JSONText.quoted($0.name) + ":" + JSONText.quoted($0.value) }.joined(separator: ",") + "}"
    }

    /// Reads `canonicalJSON` back (the database's own output, so it is trusted to be well formed).
    public init(canonicalJSON text: String) {
        let object = (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
        self.labels = object.map { Label($0.key, $0.value) }.sorted { $0.name < $1.name }
    }

    public static func < (a: LabelSet, b: LabelSet) -> Bool { a.canonicalJSON < b.canonicalJSON }
}
