import CDemangle
import Glibc

/// Readable names for mangled Swift and C++ symbols, through the Swift
/// runtime's own demangler and libstdc++'s.
public enum Demangler {
    public static func demangle(_ name: String) -> String {
        if isSwift(name) {
            return name.withCString { pointer in
                guard let result = swift_demangle(pointer, strlen(pointer), nil, nil, 0) else { return name }
                defer { free(result) }
                return String(cString: result)
            }
        }
        if name.hasPrefix("_Z") {
            var status: Int32 = 0
            guard let result = __cxa_demangle(name, nil, nil, &status), status == 0 else { return name }
            defer { free(result) }
            return String(cString: result)
        }
        return name
    }

    static func isSwift(_ name: String) -> Bool {
        name.hasPrefix("$s") || name.hasPrefix("$S") || name.hasPrefix("_T0") || name.hasPrefix("$e")
            || name.hasPrefix("_$s") || name.hasPrefix("_$S")
    }
}
