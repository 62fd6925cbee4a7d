/// A function as flame graphs and the store key it: name and source file.
public struct FunctionName: Hashable, Sendable {
    public var name: String
    public var file: String
    public init(name: String, file: String) { self.name = name; self.file = file }
}
