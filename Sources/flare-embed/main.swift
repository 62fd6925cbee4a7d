// Build-time generator behind the EmbedViewer and EmbedBuildInfo plugins: it
// turns files of the checkout into Swift source, so that the installed binary
// carries the viewer and knows which commit it was built from.
//
//   flare-embed viewer OUTPUT FILE...       the viewer's files, base64, by name
//   flare-embed build-info OUTPUT ROOT      VERSION and the commit git's files name
import Foundation

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("flare-embed: \(message)\n".utf8))
    exit(1)
}

func read(_ path: String) -> Data {
    guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    return data
}

func text(_ path: String) -> String? {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// A Swift string literal for text that holds only printable ASCII without quotes or backslashes.
func literal(_ value: String) -> String {
    let safe = value.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 0x20 && $0 != "\"" && $0 != "\\" }
    return "\"" + (safe ? value : "unknown") + "\""
}

/// Writes only when the text changed, so that an unchanged input rebuilds nothing.
func write(_ source: String, to path: String) {
    if text(path) == source.trimmingCharacters(in: .whitespacesAndNewlines) { return }
    do { try Data(source.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch { fail("cannot write \(path): \(error)") }
}

/// The commit HEAD names, read from the repository's files (no git needed):
/// a detached HEAD holds it, a branch's ref file or packed-refs line does otherwise.
func commit(gitDirectory git: String) -> String? {
    guard let head = text(git + "/HEAD") else { return nil }
    guard head.hasPrefix("ref: ") else { return head }
    let ref = String(head.dropFirst(5))
    if let loose = text(git + "/" + ref) { return loose }
    for line in (text(git + "/packed-refs") ?? "").split(separator: "\n") where line.hasSuffix(" " + ref) {
        return String(line.prefix { $0 != " " })
    }
    return nil
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else { fail("usage: flare-embed viewer OUTPUT FILE... | flare-embed build-info OUTPUT ROOT") }
let output = arguments[2]

switch arguments[1] {
case "viewer":
    var entries: [String] = []
    for path in arguments.dropFirst(3).sorted() {
        let name = URL(fileURLWithPath: path).lastPathComponent
        entries.append("        (\(literal(name)), \"\(read(path).base64EncodedString())\"),")
    }
    write("""
        // Generated at build time by flare-embed from viewer/: edit the viewer, not this file.
        enum EmbeddedViewerFiles {
            /// Each file of viewer/ by name, its bytes in base64.
            static let base64: [(name: String, bytes: String)] = [
        \(entries.joined(separator: "\n"))
            ]
        }

        """, to: output)
case "build-info":
    guard arguments.count == 4 else { fail("usage: flare-embed build-info OUTPUT ROOT") }
    let root = arguments[3]
    guard let version = text(root + "/VERSION"), !version.isEmpty else { fail("\(root)/VERSION is missing or empty") }
    let hash = commit(gitDirectory: root + "/.git").flatMap { $0.count == 40 && $0.allSatisfy(\.isHexDigit) ? $0 : nil }
    write("""
        // Generated at build time by flare-embed from VERSION and .git: do not edit.
        enum BuildInfo {
            static let version = \(literal(version))
            /// The commit the binary was built from, or nil outside a git checkout.
            static let commit: String? = \(hash.map(literal) ?? "nil")
        }

        """, to: output)
default:
    fail("unknown mode \(arguments[1]): use viewer or build-info")
}
