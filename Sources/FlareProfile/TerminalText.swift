/// Text safe to print on a terminal or in a log line: symbol names, labels,
/// process and file names are chosen by whoever built or runs the profiled
/// program.
public enum TerminalText {
    /// Replaces C0 and C1 control characters (escape sequences start with ESC
    /// or CSI) and bidirectional overrides with `?`, and cuts to `maxLength`
    /// characters with a trailing `…`.
    public static func safe(_ text: String, maxLength: Int = .max) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let v = scalar.value
            let isControl = v < 0x20 || (0x7f...0x9f).contains(v)
            let isBidi = (0x202a...0x202e).contains(v) || (0x2066...0x2069).contains(v) || v == 0x200e || v == 0x200f
            scalars.append(isControl || isBidi ? "?" : scalar)
        }
        let clean = String(scalars)
        guard clean.count > maxLength, maxLength > 1 else { return clean }
        return String(clean.prefix(maxLength - 1)) + "…"
    }
}
