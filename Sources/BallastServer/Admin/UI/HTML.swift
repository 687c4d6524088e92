/// Escaping for the web UI's server-rendered pages. Every value that came from a workflow, a
/// request or a person goes through `escape` (text and attribute values alike) or `urlComponent`
/// (path segments and query values), so a hostile workflow id or payload renders inert.
enum HTML {
    /// Escapes `& < > " '` (safe in element text and in double- or single-quoted attributes).
    /// NUL and other C0 controls except tab and newline become U+FFFD.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F { out += "\u{FFFD}" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// Percent-encodes everything but unreserved characters (RFC 3986), so `/`, `?`, `#`, `&`
    /// inside a workflow id cannot change a URL's shape.
    static func urlComponent(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A") ... UInt8(ascii: "Z"), UInt8(ascii: "a") ... UInt8(ascii: "z"),
                 UInt8(ascii: "0") ... UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    /// The UI's path of a run: `/workflows/<id>` or `/workflows/<id>/<run>`, both segments encoded.
    static func workflowPath(_ workflowID: String, _ runID: String = "") -> String {
        "/workflows/" + urlComponent(workflowID) + (runID.isEmpty ? "" : "/" + urlComponent(runID))
    }
}
