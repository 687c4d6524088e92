/// RFC 3339 times and Go-style durations for visibility queries, without Foundation.
enum VisibilityTime {
    static let nanosPerSecond: Int64 = 1_000_000_000

    /// UTC nanoseconds of an RFC 3339 time (`2026-11-24T00:00:00Z`, `…T01:02:03.5+01:00`) or a
    /// date (`2026-11-24`, midnight UTC); nil if malformed or outside Int64 nanoseconds.
    static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 10, bytes.count <= 40 else { return nil }
        var cursor = 0
        func number(_ width: Int) -> Int64? {
            guard cursor + width <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[cursor..<cursor + width] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            cursor += width
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard cursor < bytes.count, characters.utf8.contains(bytes[cursor]) else { return false }
            cursor += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
              (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year) else { return nil }
        var seconds = daysFromCivil(year: year, month: month, day: day) * 86_400
        var fraction: Int64 = 0
        if cursor < bytes.count {
            guard expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2),
                  hour < 24, minute < 60, second < 61 else { return nil }
            seconds += hour * 3_600 + minute * 60 + second
            if cursor < bytes.count, bytes[cursor] == UInt8(ascii: ".") {
                cursor += 1
                var digits = 0
                while cursor < bytes.count, bytes[cursor] >= 48, bytes[cursor] <= 57 {
                    if digits < 9 { fraction = fraction * 10 + Int64(bytes[cursor] - 48) }
                    digits += 1
                    cursor += 1
                }
                guard digits > 0 else { return nil }
                for _ in min(digits, 9)..<9 { fraction *= 10 }
            }
            if expect("Zz") {
                // UTC
            } else {
                guard cursor < bytes.count else { return nil }
                let sign: Int64 = bytes[cursor] == UInt8(ascii: "-") ? -1 : 1
                guard expect("+-"), let offsetHours = number(2), expect(":"), let offsetMinutes = number(2),
                      offsetHours < 24, offsetMinutes < 60 else { return nil }
                seconds -= sign * (offsetHours * 3_600 + offsetMinutes * 60)
            }
        }
        guard cursor == bytes.count else { return nil }
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: nanosPerSecond)
        guard !overflow else { return nil }
        let (total, overflowAdding) = scaled.addingReportingOverflow(fraction)
        return overflowAdding ? nil : total
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Nanoseconds of a duration like `90s`, `1h30m`, `250ms`, `1.5s` (units ns, us, ms, s, m, h, d);
    /// nil if malformed or out of range.
    static func duration(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 64 else { return nil }
        var cursor = 0
        var total: Double = 0
        while cursor < bytes.count {
            let start = cursor
            while cursor < bytes.count, (bytes[cursor] >= 48 && bytes[cursor] <= 57) || bytes[cursor] == UInt8(ascii: ".") { cursor += 1 }
            guard cursor > start, let amount = Double(String(decoding: bytes[start..<cursor], as: UTF8.self)) else { return nil }
            let unitStart = cursor
            while cursor < bytes.count, (bytes[cursor] >= 97 && bytes[cursor] <= 122) || bytes[cursor] == 0xC2 || bytes[cursor] == 0xB5 { cursor += 1 }
            let unit: Double
            switch String(decoding: bytes[unitStart..<cursor], as: UTF8.self) {
            case "ns": unit = 1
            case "us", "µs": unit = 1e3
            case "ms": unit = 1e6
            case "s": unit = 1e9
            case "m": unit = 60e9
            case "h": unit = 3_600e9
            case "d": unit = 86_400e9
            default: return nil
            }
            total += amount * unit
        }
        guard total.isFinite, total < 9.2e18 else { return nil }
        return Int64(total)
    }
}
