import BallastProto
import SwiftProtobuf

/// The opaque List page token: version, order, a fingerprint of the query, and the sort key
/// (time, run id) of the last run returned. The next page starts strictly after that key, so
/// a token stays valid while runs are added (new runs start later and sort before it in the
/// default order) or removed.
enum VisibilityPageToken {
    static let version: UInt8 = 2
    static let maxRunIdBytes = 255

    /// A 32-bit fingerprint of what the token belongs to (namespace, query text, filter).
    static func fingerprint(namespace: String, query: ParsedVisibilityQuery, filter: Ballast_V1_WorkflowExecutionFilter) -> UInt32 {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        let filterBytes: [UInt8] = (try? filter.serializedBytes(options: options)) ?? []
        var hash = RollingHash.combine(RollingHash.empty, namespace.utf8)
        hash = RollingHash.combine(hash, [0])
        hash = RollingHash.combine(hash, query.text.utf8)
        hash = RollingHash.combine(hash, [0])
        hash = RollingHash.combine(hash, filterBytes)
        return UInt32(truncatingIfNeeded: hash ^ (hash >> 32))
    }

    static func encode(_ key: VisibilityRowKey, order: VisibilityOrder, fingerprint: UInt32) -> [UInt8] {
        var bytes: [UInt8] = [version, order.rawValue]
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: fingerprint >> UInt32(shift))) }
        let primary = UInt64(bitPattern: key.primary)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: primary >> UInt64(shift))) }
        bytes.append(contentsOf: key.runId.utf8.prefix(maxRunIdBytes))
        return bytes
    }

    /// The position a token names; nil for an empty token.
    static func decode(_ bytes: [UInt8], order: VisibilityOrder, fingerprint: UInt32) throws(VisibilityQueryError) -> VisibilityRowKey? {
        guard !bytes.isEmpty else { return nil }
        guard bytes.count >= 14, bytes.count <= 14 + maxRunIdBytes, bytes[0] == version else {
            throw VisibilityQueryError("next_page_token does not decode; pass back the token the server returned", column: 0, token: "")
        }
        let tokenFingerprint = bytes[2..<6].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard bytes[1] == order.rawValue, tokenFingerprint == fingerprint else {
            throw VisibilityQueryError("next_page_token belongs to another query, order or namespace; list again without a token",
                                       column: 0, token: "")
        }
        let primary = bytes[6..<14].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return VisibilityRowKey(primary: Int64(bitPattern: primary), runId: String(decoding: bytes[14...], as: UTF8.self), slot: -1)
    }
}

/// The structured `WorkflowExecutionFilter` as predicate terms (ANDed with the query).
enum VisibilityFilterTerms {
    static func terms(_ filter: Ballast_V1_WorkflowExecutionFilter, binder: VisibilityBinder) throws(VisibilityQueryError) -> [VisibilityPredicate] {
        var terms: [VisibilityPredicate] = []
        if !filter.statuses.isEmpty {
            terms.append(.oneOf(.executionStatus, filter.statuses.map { .int(Int64($0.rawValue)) }))
        }
        if !filter.workflowType.isEmpty { terms.append(.compare(.workflowType, .equal, .text(filter.workflowType))) }
        if !filter.workflowID.isEmpty { terms.append(.compare(.workflowId, .equal, .text(filter.workflowID))) }
        if !filter.taskQueue.isEmpty { terms.append(.compare(.taskQueue, .equal, .text(filter.taskQueue))) }
        try range(.startTime, "start", filter.startTimeMinUnixNanos, filter.startTimeMaxUnixNanos, &terms)
        try range(.closeTime, "close", filter.closeTimeMinUnixNanos, filter.closeTimeMaxUnixNanos, &terms)
        for name in filter.searchAttributes.keys.sorted() {
            guard let wanted = filter.searchAttributes[name] else { continue }
            let field = try binder.field(named: name, column: 0)
            switch wanted.value {
            case .keywordValue(let text)?, .textValue(let text)?: terms.append(.compare(field, .equal, .text(text)))
            case .keywordListValue(let list)?: terms += list.values.map { .compare(field, .equal, .text($0)) }
            case .intValue(let number)?: terms.append(.compare(field, .equal, .int(number)))
            case .doubleValue(let number)?: terms.append(.compare(field, .equal, .double(number)))
            case .boolValue(let flag)?: terms.append(.compare(field, .equal, .bool(flag)))
            case .datetimeUnixNanos(let nanos)?: terms.append(.compare(field, .equal, .int(nanos)))
            case nil: terms.append(.not(.exists(field)))
            }
        }
        return terms
    }

    /// Inclusive bounds; 0 means unbounded, as in the proto.
    private static func range(_ field: VisibilityField, _ name: String, _ low: Int64, _ high: Int64,
                              _ terms: inout [VisibilityPredicate]) throws(VisibilityQueryError) {
        if low != 0, high != 0, low > high {
            throw VisibilityQueryError("the filter's \(name) time range is empty (min > max)", column: 0, token: "")
        }
        if low != 0 { terms.append(.compare(field, .greaterOrEqual, .int(low))) }
        if high != 0 { terms.append(.compare(field, .lessOrEqual, .int(high))) }
    }
}
