import FlareFlameGraph
/// A Prometheus-style label selector, `{host.name="a", version!="1.2", region=~"eu-.*"}`,
/// matched against series labels.
public struct LabelSelector: Sendable {
    public enum Operator: String, Sendable { case equal = "=", notEqual = "!=", matches = "=~", notMatches = "!~" }

    public struct Matcher: @unchecked Sendable {
        public var name: String
        public var op: Operator
        public var value: String
        // Regex is not Sendable; matchers are built once and only read.
        fileprivate var regex: Regex<AnyRegexOutput>?

        func matches(_ labels: LabelSet) -> Bool {
            let actual = labels[name] ?? ""
            switch op {
            case .equal: return actual == value
            case .notEqual: return actual != value
            case .matches: return (try? regex?.wholeMatch(in: actual)) != nil
            case .notMatches: return (try? regex?.wholeMatch(in: actual)) == nil
            }
        }
    }

    public var matchers: [Matcher]

    public init() { matchers = [] }

    public func matches(_ labels: LabelSet) -> Bool { matchers.allSatisfy { $0.matches(labels) } }

    /// Parses `{…}` (the braces are optional; empty text selects everything).
    public init(parsing text: String) throws(StoreError) {
        let pairs = try Self.parsePairs(text, allowOperators: true)
        var matchers: [Matcher] = []
        for (name, op, value) in pairs {
            var matcher = Matcher(name: name, op: op, value: value, regex: nil)
            if op == .matches || op == .notMatches {
                guard value.utf8.count <= 256 else { throw .badRequest("the regular expression for label \(JSONText.quoted(name)) is longer than 256 bytes") }
                do { matcher.regex = try Regex(value) } catch {
                    throw .badRequest("invalid regular expression \(JSONText.quoted(value)) for label \(JSONText.quoted(name))")
                }
            }
            matchers.append(matcher)
        }
        self.matchers = matchers
    }

    /// `k=v,k2="v 2"` or `{k=v}`: the label part of a selector or of a Pyroscope application name.
    static func parsePairs(_ text: String, allowOperators: Bool) throws(StoreError) -> [(String, Operator, String)] {
        var chars = Array(text.unicodeScalars)[...]
        func skipSpaces() { while let c = chars.first, c == " " || c == "\t" { chars.removeFirst() } }
        skipSpaces()
        var braced = false
        if chars.first == "{" { braced = true; chars.removeFirst() }
        var result: [(String, Operator, String)] = []
        while true {
            skipSpaces()
            if chars.isEmpty {
                if braced { throw .badRequest("label selector \(JSONText.quoted(text)) is missing its closing '}'") }
                break
            }
            if chars.first == "}" {
                guard braced else { throw .badRequest("unexpected '}' in labels \(JSONText.quoted(text))") }
                chars.removeFirst()
                skipSpaces()
                guard chars.isEmpty else { throw .badRequest("unexpected text after '}' in labels \(JSONText.quoted(text))") }
                break
            }
            var name = ""
            while let c = chars.first, c != "=", c != "!", c != " ", c != ",", c != "}" { name.unicodeScalars.append(c); chars.removeFirst() }
            try LabelSet.validateName(name)
            skipSpaces()
            var op: Operator
            if chars.starts(with: ["!", "="]) { op = .notEqual; chars.removeFirst(2) }
            else if chars.starts(with: ["!", "~"]) { op = .notMatches; chars.removeFirst(2) }
            else if chars.starts(with: ["=", "~"]) { op = .matches; chars.removeFirst(2) }
            else if chars.first == "=" { op = .equal; chars.removeFirst() }
            else { throw .badRequest("expected '=' after label \(JSONText.quoted(name)) in \(JSONText.quoted(text))") }
            if !allowOperators && op != .equal { throw .badRequest("only k=v labels are allowed here, not \(op.rawValue)") }
            skipSpaces()
            var value = ""
            if chars.first == "\"" {
                chars.removeFirst()
                var closed = false
                while let c = chars.popFirst() {
                    if c == "\\", let next = chars.popFirst() {
                        switch next {
                        case "n": value += "\n"
                        case "t": value += "\t"
                        default: value.unicodeScalars.append(next)
                        }
                    } else if c == "\"" { closed = true; break }
                    else { value.unicodeScalars.append(c) }
                }
                guard closed else { throw .badRequest("unterminated quoted value for label \(JSONText.quoted(name))") }
            } else {
                while let c = chars.first, c != ",", c != "}" { value.unicodeScalars.append(c); chars.removeFirst() }
                while value.hasSuffix(" ") { value.removeLast() }
            }
            result.append((name, op, value))
            skipSpaces()
            if chars.first == "," { chars.removeFirst() }
        }
        return result
    }
}
