import Foundation

/// One self-contained HTML file: the viewer with its stylesheet, its modules
/// and one flame-graph document inlined, which opens offline from disk.
///
/// `documentJSON` is exactly a `/api/v1/flamegraph` or `/api/v1/diff` document
/// (a diff, with `total_a`/`total_b` columns, opens in the diff view).
public enum HTMLExport {
    /// Renders with the viewer found by `ViewerAssets.locate()`.
    public static func render(documentJSON: String, title: String) throws -> String {
        try render(documentJSON: documentJSON, title: title, assets: ViewerAssets.locate())
    }

    public static func render(documentJSON: String, title: String, assets: ViewerAssets) throws -> String {
        var html = try assets.text("index.html")
        let style = try assets.text("style.css")
        let script = try bundle(assets)
        // Only the script carrying this nonce may run: names in the data can
        // never become markup, but if one did, it still could not execute.
        let nonce = (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        let policy = "default-src 'none'; script-src 'nonce-\(nonce)'; style-src 'unsafe-inline'; img-src data: blob:; base-uri 'none'; form-action 'none'"
        try replace(&html, #"<link rel="stylesheet" href="ui/style.css">"#, with: "<style>\n" + style + "\n</style>")
        try replace(&html, #"<meta charset="utf-8">"#, with: #"<meta charset="utf-8">"# + "\n<meta http-equiv=\"Content-Security-Policy\" content=\"\(policy)\">")
        try replace(&html, "<title>Flare</title>", with: "<title>" + escapeHTML(title) + "</title>")
        try replace(&html, #"<script type="module" src="ui/app.js"></script>"#, with:
            "<script type=\"application/json\" id=\"flare-data\">" + scriptSafeJSON(documentJSON) + "</script>\n"
            + "<script type=\"module\" nonce=\"\(nonce)\">\n" + script + "\n</script>")
        return html
    }

    /// `<`, `>` and `&` as JSON escapes: valid inside JSON strings and absent
    /// from valid JSON outside them, so the document cannot close its script element.
    static func scriptSafeJSON(_ json: String) -> String {
        var out = ""
        out.reserveCapacity(json.utf8.count)
        for scalar in json.unicodeScalars {
            switch scalar {
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    public static func escapeHTML(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func replace(_ html: inout String, _ marker: String, with replacement: String) throws(ViewerAssetsError) {
        guard let range = html.range(of: marker) else { throw .malformed("index.html lacks \(marker)") }
        html.replaceSubrange(range, with: replacement)
    }

    // MARK: Modules

    /// The viewer's ES modules as one classic-scoped module script. Browsers
    /// refuse module imports from file:// pages, so each module becomes a
    /// function that returns its exports, called in dependency order.
    ///
    /// The modules keep to a small convention that this relies on: imports are
    /// single lines `import { a, b as c } from './x.js';` and exports are
    /// `export function|class|const|let NAME`.
    static func bundle(_ assets: ViewerAssets) throws(ViewerAssetsError) -> String {
        var sources: [String: String] = [:]
        for name in assets.moduleNames() { sources[name] = try assets.text(name) }
        guard sources["app.js"] != nil else { throw .missingFile(assets.origin + "/app.js") }
        var order: [String] = []
        var state: [String: Bool] = [:]   // false: visiting, true: done
        func visit(_ name: String) throws(ViewerAssetsError) {
            if state[name] == true { return }
            if state[name] == false { throw .malformed("modules import each other in a cycle through \(name)") }
            guard let source = sources[name] else { throw .malformed("a module imports \(name), which is missing") }
            state[name] = false
            for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
                if let parsed = try parseImport(line) { try visit(parsed.module) }
            }
            state[name] = true
            order.append(name)
        }
        try visit("app.js")

        var out = "'use strict';\n"
        for name in order {
            var body = ""
            var exported: [String] = []
            for line in sources[name]!.split(separator: "\n", omittingEmptySubsequences: false) {
                if let parsed = try parseImport(line) {
                    body += "const { " + parsed.bindings + " } = " + variable(parsed.module) + ";\n"
                } else if line.hasPrefix("export ") {
                    let declaration = line.dropFirst("export ".count)
                    let words = declaration.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "$") })
                    guard let keyword = words.first, ["function", "class", "const", "let", "async"].contains(keyword),
                          let exportedName = words.dropFirst(keyword == "async" ? 2 : 1).first else {
                        throw .malformed("\(name): unsupported export form: \(line)")
                    }
                    exported.append(String(exportedName))
                    body += declaration + "\n"
                } else {
                    body += line + "\n"
                }
            }
            out += "const " + variable(name) + " = (() => {\n" + body + "return { " + exported.joined(separator: ", ") + " };\n})();\n"
        }
        if out.range(of: "</script", options: .caseInsensitive) != nil || out.range(of: "<!--") != nil {
            throw .malformed("a module contains </script or <!--, which would end the inlined script")
        }
        return out
    }

    private static func variable(_ module: String) -> String {
        "__flare_" + String(module.dropLast(3).map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// `import { a, b as c } from './x.js';` → ("x.js", "a, b: c").
    private static func parseImport(_ line: Substring) throws(ViewerAssetsError) -> (module: String, bindings: String)? {
        let text = line.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("import ") else { return nil }
        guard let open = text.firstIndex(of: "{"), let close = text.firstIndex(of: "}"), open < close,
              let from = text.range(of: "from './", range: close..<text.endIndex),
              let end = text.range(of: ".js'", range: from.upperBound..<text.endIndex) else {
            throw .malformed("unsupported import form: \(text)")
        }
        let module = String(text[from.upperBound..<end.lowerBound]) + ".js"
        let bindings = text[text.index(after: open)..<close].split(separator: ",").map { part -> String in
            let words = part.split(separator: " ").map(String.init)
            return words.count == 3 && words[1] == "as" ? words[0] + ": " + words[2] : words.joined()
        }.filter { !$0.isEmpty }
        return (module, bindings.joined(separator: ", "))
    }
}
