import FlareFlameGraph
/// Samples and CPU time: the two values every stored stack carries.
public struct StackValue: Sendable, Equatable {
    public var samples: Int64
    public var cpuNanos: Int64
    public init(samples: Int64, cpuNanos: Int64) { self.samples = samples; self.cpuNanos = cpuNanos }
    public static let zero = StackValue(samples: 0, cpuNanos: 0)

    /// Adds, saturating instead of trapping: sums of many windows stay in range
    /// because each window's total was checked at ingest, but a merge of
    /// years of data must still not crash the store.
    @inlinable
    public mutating func add(_ other: StackValue) {
        samples = samples.addingReportingOverflow(other.samples).overflow ? .max : samples &+ other.samples
        cpuNanos = cpuNanos.addingReportingOverflow(other.cpuNanos).overflow ? .max : cpuNanos &+ other.cpuNanos
    }
}

/// One profile window, parsed, validated and deduplicated locally, ready for a
/// storage backend to map its local function and stack indexes to global ids.
public struct PreparedWindow: Sendable {
    /// Idempotency key: the same key is stored once.
    public var key: String
    public var service: String
    public var labels: LabelSet
    public var startNanos: Int64
    public var endNanos: Int64
    /// Local function index → name.
    public var functions: [FunctionName]
    /// Local stack index → local function indexes, leaf first.
    public var stacks: [[Int32]]
    /// Local stack index → summed value over all samples with that stack.
    public var values: [StackValue]
    /// Samples that ran inside a span, per (stack, span, trace).
    public var spanValues: [SpanValue]
    public var total: StackValue
    /// Functions the agent could not name, by the file they are in and their
    /// start in it: named later, once that file's debug info reaches the store.
    public var unnamedFunctions: [UnnamedFunction] = []

    public struct UnnamedFunction: Sendable, Equatable {
        /// Local function index.
        public var function: Int32
        /// The GNU build-id of the file, lowercase hex.
        public var buildID: String
        /// Where the function starts in the file (its name is `file+0xOFFSET`).
        public var fileOffset: UInt64
    }

    public struct SpanValue: Sendable {
        public var stack: Int32
        public var spanID: String
        public var traceID: String
        public var value: StackValue
    }
}

/// The outcome of storing a window.
public enum InsertOutcome: Sendable, Equatable {
    case stored
    case duplicate
}
