/// Engine time plus a duration a request or command asked for.
///
/// Durations come from clients, workers and administrators (timeouts, timer lengths, retry
/// intervals, retention) and may be as large as `Int64.max` nanoseconds. A plain `+` traps when
/// the sum passes `Int64.max`, and a committed entry that traps stops every node that applies
/// it, again on every restart. The sum saturates instead: such a deadline is at the end of the
/// engine's time (the year 2262), so it never comes due, which is what so long a duration means.
/// Below the bound the result is exactly the sum, so logs applied before this rule give the same
/// state under it.
extension Int64 {
    func addingSaturated(_ duration: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(duration)
        guard overflow else { return sum }
        return duration > 0 ? .max : .min
    }
}

extension Int32 {
    /// The next attempt number, staying at `Int32.max` once there: attempts are counted per
    /// failure, and a plain `+ 1` would trap on the 2,147,483,647th.
    var nextAttempt: Int32 { self == .max ? .max : self + 1 }
}
