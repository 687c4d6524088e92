import BallastProto

/// Search attributes every namespace starts with (as Temporal's development server).
let predefinedSearchAttributes: [String: Ballast_V1_IndexedValueType] = [
    "CustomKeywordField": .keyword, "CustomStringField": .text, "CustomTextField": .text,
    "CustomIntField": .int, "CustomDoubleField": .double, "CustomBoolField": .bool,
    "CustomDatetimeField": .datetime, "CustomKeywordListField": .keywordList,
]

extension WorkflowEngine {
    /// The visibility query's built-in field names. A search attribute registered under one of
    /// them could never be queried (the built-in wins) and would share the built-in's posting
    /// lists, so the API refuses to register them. The engine itself still applies such an entry
    /// (an older log may hold one; replaying it must give the same state).
    public static var reservedSearchAttributeNames: Set<String> { Set(VisibilityField.builtIns.keys) }

    /// Why these search attributes are invalid for the namespace, or nil when they are valid.
    /// With `limitsSizes` (entries of format 5 on), a value over `maxSearchAttributeValueBytes` is invalid too.
    func searchAttributeProblem(_ attributes: Ballast_V1_SearchAttributes, namespace: NamespaceState, limitsSizes: Bool) -> String? {
        for name in attributes.indexedFields.keys.sorted() {
            guard let value = attributes.indexedFields[name] else { continue }
            guard let declared = namespace.searchAttributes[name] ?? predefinedSearchAttributes[name] else {
                return "search attribute \(name) is not registered in namespace \(namespace.name)"
            }
            guard Self.valueMatches(value, declared) else {
                return "search attribute \(name) must be of type \(declared)"
            }
            if limitsSizes {
                let size = Self.valueBytes(value)
                guard size <= limits.maxSearchAttributeValueBytes else {
                    return "search attribute \(name) is \(size) bytes, over the \(limits.maxSearchAttributeValueBytes)-byte limit of a value"
                }
            }
        }
        return nil
    }

    /// A search attribute value's size: a string's UTF-8 bytes, a keyword list's elements
    /// together (each at least one byte, so a list of empty strings counts too), 8 for a number.
    static func valueBytes(_ value: Ballast_V1_SearchAttributeValue) -> Int {
        switch value.value {
        case .textValue(let text)?, .keywordValue(let text)?: text.utf8.count
        case .keywordListValue(let list)?: list.values.reduce(0) { $0 + max(1, $1.utf8.count) }
        case .intValue?, .doubleValue?, .datetimeUnixNanos?: 8
        case .boolValue?: 1
        case nil: 0
        }
    }

    static func valueMatches(_ value: Ballast_V1_SearchAttributeValue, _ type: Ballast_V1_IndexedValueType) -> Bool {
        switch (value.value, type) {
        case (.textValue, .text), (.keywordValue, .keyword), (.intValue, .int), (.doubleValue, .double),
             (.boolValue, .bool), (.datetimeUnixNanos, .datetime), (.keywordListValue, .keywordList):
            return true
        case (nil, _):
            return true // an unset value removes the attribute
        default:
            return false
        }
    }

    /// RegisterNamespace.
    mutating func registerNamespace(_ request: Ballast_V1_RegisterNamespaceRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        guard !request.name.isEmpty, request.name.utf8.count <= 255 else {
            throw .invalidArgument("namespace name must be 1...255 bytes")
        }
        guard namespaces[request.name] == nil else { throw .namespaceAlreadyExists(request.name) }
        guard namespaces.count < limits.maxNamespaces else {
            throw .limitExceeded("\(namespaces.count) namespaces exist, the limit is \(limits.maxNamespaces)")
        }
        guard request.workflowExecutionRetentionNanos >= 0 else { throw .invalidArgument("retention must not be negative") }
        let retention = request.workflowExecutionRetentionNanos == 0
            ? Self.defaultRetentionNanos : request.workflowExecutionRetentionNanos
        namespaces[request.name] = NamespaceState(name: request.name, description: request.description_p, retentionNanos: retention)
    }

    /// AddSearchAttributes: registers typed attribute names in a namespace.
    mutating func addSearchAttributes(_ request: Ballast_V1_AddSearchAttributesRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let namespace = try resolveNamespace(request.namespace)
        for name in request.searchAttributes.keys.sorted() {
            let type = request.searchAttributes[name] ?? .unspecified
            guard !name.isEmpty, type != .unspecified else {
                throw .invalidArgument("search attribute \(name) needs a name and a type")
            }
            if let existing = namespace.searchAttributes[name] ?? predefinedSearchAttributes[name], existing != type {
                throw .invalidArgument("search attribute \(name) is already registered as \(existing)")
            }
        }
        var updated = namespace
        for (name, type) in request.searchAttributes { updated.searchAttributes[name] = type }
        guard updated.searchAttributes.count <= limits.maxSearchAttributesPerNamespace else {
            throw .limitExceeded("namespace \(namespace.name) may register at most \(limits.maxSearchAttributesPerNamespace) search attributes")
        }
        namespaces[namespace.name] = updated
    }
}
