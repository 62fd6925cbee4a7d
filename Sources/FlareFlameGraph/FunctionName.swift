/// A function as flame graphs and the store key it: name and source file.
/// `line`, where the function starts, is shown beside the file but is not part
/// of its identity: a function that moved between two builds is still the
/// same function to a diff.
public struct FunctionName: Hashable, Sendable {
    public var name: String
    public var file: String
    /// The function's first line (pprof `start_line`); 0 if unknown.
    public var line: Int64

    public init(name: String, file: String, line: Int64 = 0) { self.name = name; self.file = file; self.line = line }

    public static func == (a: FunctionName, b: FunctionName) -> Bool { a.name == b.name && a.file == b.file }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(file)
    }
}
