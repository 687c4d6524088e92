/// The `grpc-timeout` header: at most 8 digits and a unit (H, M, S, m, u, n).
public enum GRPCTimeout {
    /// Parses a `grpc-timeout` value into nanoseconds; nil when malformed.
    public static func parseNanoseconds(_ value: String) -> Int64? {
        let bytes = Array(value.utf8)
        guard bytes.count >= 2, bytes.count <= 9, let unit = bytes.last else { return nil }
        var amount: Int64 = 0
        for digit in bytes.dropLast() {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        let scale: Int64
        switch unit {
        case UInt8(ascii: "H"): scale = 3_600_000_000_000
        case UInt8(ascii: "M"): scale = 60_000_000_000
        case UInt8(ascii: "S"): scale = 1_000_000_000
        case UInt8(ascii: "m"): scale = 1_000_000
        case UInt8(ascii: "u"): scale = 1_000
        case UInt8(ascii: "n"): scale = 1
        default: return nil
        }
        let (product, overflow) = amount.multipliedReportingOverflow(by: scale)
        return overflow ? Int64.max : product
    }

    /// Formats a timeout with the finest unit that fits in 8 digits (rounding up).
    public static func format(nanoseconds: Int64) -> String {
        let value = max(nanoseconds, 0)
        let units: [(Int64, Character)] = [(1, "n"), (1_000, "u"), (1_000_000, "m"),
                                           (1_000_000_000, "S"), (60_000_000_000, "M"), (3_600_000_000_000, "H")]
        for (scale, unit) in units {
            let amount = (value + scale - 1) / scale
            if amount <= 99_999_999 { return "\(amount)\(unit)" }
        }
        return "99999999H"
    }
}
