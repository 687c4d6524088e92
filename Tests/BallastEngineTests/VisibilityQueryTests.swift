import BallastEngine
import BallastProto
import Testing

/// The visibility query language: grammar, precedence, every error with its column, hostile input.
@Suite("Visibility query parser")
struct VisibilityQueryTests {
    func parse(_ text: String) throws -> ParsedVisibilityQuery { try ParsedVisibilityQuery(parsing: text) }

    func predicate(_ field: String, _ test: QueryTest, column: Int) -> QueryExpression {
        .predicate(QueryPredicate(field: field, column: column, test: test))
    }

    func string(_ text: String, _ column: Int) -> QueryLiteral { QueryLiteral(value: .string(text), column: column, text: "'\(text)'") }

    /// The error a query gets, or nil when it parses.
    func error(_ text: String) -> VisibilityQueryError? {
        do { _ = try ParsedVisibilityQuery(parsing: text); return nil } catch { return error }
    }

    @Test("an empty query matches everything in the default order")
    func empty() throws {
        for text in ["", "   ", "\n\t"] {
            let query = try parse(text)
            #expect(query.expression == nil)
            #expect(query.order == .startTimeDescending)
        }
    }

    @Test("AND binds tighter than OR, NOT tighter than AND, parentheses override")
    func precedence() throws {
        let a = predicate("A", .compare(.equal, string("x", 5)), column: 1)
        let query = try parse("A = 'x' OR B = 'y' AND C = 'z'")
        guard case .or(let terms)? = query.expression, terms.count == 2, terms[0] == a,
              case .and(let conjunction) = terms[1], conjunction.count == 2 else {
            Issue.record("wrong shape: \(String(describing: query.expression))")
            return
        }
        let notFirst = try parse("NOT A = 'x' AND B = 'y'").expression
        guard case .and(let parts)? = notFirst, case .not = parts[0] else {
            Issue.record("NOT must bind to the first comparison only: \(String(describing: notFirst))")
            return
        }
        let grouped = try parse("(A = 'x' OR B = 'y') AND C = 'z'").expression
        guard case .and(let groupedParts)? = grouped, case .or = groupedParts[0] else {
            Issue.record("parentheses must group the OR: \(String(describing: grouped))")
            return
        }
        let notGroup = try parse("not (A = 'x' or B = 'y')").expression
        guard case .not(.or)? = notGroup else {
            Issue.record("lower-case keywords and NOT over a group: \(String(describing: notGroup))")
            return
        }
    }

    @Test("every operator and literal form")
    func operators() throws {
        let cases: [(String, QueryTest)] = [
            ("X = 'a'", .compare(.equal, string("a", 5))),
            ("X != 'a'", .compare(.notEqual, QueryLiteral(value: .string("a"), column: 6, text: "'a'"))),
            ("X <> 'a'", .compare(.notEqual, QueryLiteral(value: .string("a"), column: 6, text: "'a'"))),
            ("X < 5", .compare(.less, QueryLiteral(value: .integer(5), column: 5, text: "5"))),
            ("X <= -5", .compare(.lessOrEqual, QueryLiteral(value: .integer(-5), column: 6, text: "-5"))),
            ("X > 2.5", .compare(.greater, QueryLiteral(value: .double(2.5), column: 5, text: "2.5"))),
            ("X >= 1e3", .compare(.greaterOrEqual, QueryLiteral(value: .double(1000), column: 6, text: "1e3"))),
            ("X = TRUE", .compare(.equal, QueryLiteral(value: .bool(true), column: 5, text: "TRUE"))),
            ("X = Running", .compare(.equal, QueryLiteral(value: .word("Running"), column: 5, text: "Running"))),
            ("X IN ('a', \"b\")", .oneOf([string("a", 7), QueryLiteral(value: .string("b"), column: 12, text: "\"b\"")], negated: false)),
            ("X NOT IN (1)", .oneOf([QueryLiteral(value: .integer(1), column: 11, text: "1")], negated: true)),
            ("X BETWEEN 1 AND 2", .between(QueryLiteral(value: .integer(1), column: 11, text: "1"),
                                           QueryLiteral(value: .integer(2), column: 17, text: "2"), negated: false)),
            ("X STARTS_WITH 'ab'", .startsWith(QueryLiteral(value: .string("ab"), column: 15, text: "'ab'"))),
            ("X IS NULL", .isNull(negated: false)),
            ("X is not null", .isNull(negated: true)),
        ]
        for (text, test) in cases {
            #expect(try parse(text).expression == predicate("X", test, column: 1), "\(text)")
        }
    }

    @Test("quoted names, escaped quotes and unicode values")
    func quoting() throws {
        let query = try parse("`Order Id` = 'it''s' AND Y = 'a\\'b' AND Z = 'Überweisung 🚀'")
        guard case .and(let terms)? = query.expression, terms.count == 3,
              case .predicate(let first) = terms[0], case .predicate(let second) = terms[1], case .predicate(let third) = terms[2] else {
            Issue.record("wrong shape")
            return
        }
        #expect(first.field == "Order Id")
        #expect(first.test == .compare(.equal, QueryLiteral(value: .string("it's"), column: 14, text: "'it''s'")))
        #expect(second.test == .compare(.equal, QueryLiteral(value: .string("a'b"), column: 30, text: "'a\\'b'")))
        #expect(third.test == .compare(.equal, QueryLiteral(value: .string("Überweisung 🚀"), column: 45, text: "'Überweisung 🚀'")))
    }

    @Test("ORDER BY StartTime or CloseTime, ascending or descending")
    func orderBy() throws {
        #expect(try parse("ORDER BY StartTime").order == .startTimeDescending)
        #expect(try parse("order by StartTime asc").order == .startTimeAscending)
        #expect(try parse("WorkflowType = 'T' ORDER BY CloseTime DESC").order == .closeTimeDescending)
        #expect(try parse("ORDER BY CloseTime ASC").order == .closeTimeAscending)
        #expect(try parse("WorkflowType = 'T' ORDER BY CloseTime").expression != nil)
    }

    @Test("each syntax error names its 1-based column and token")
    func syntaxErrors() {
        let cases: [(query: String, column: Int, token: String, reason: String)] = [
            ("WorkflowType = ", 16, "", "expected a value"),
            ("WorkflowType == 'x'", 15, "=", "expected a value"),
            ("WorkflowType 'x'", 14, "'x'", "expected an operator"),
            ("= 'x'", 1, "=", "expected a field name"),
            ("A = 'x' B = 'y'", 9, "B", "expected AND, OR"),
            ("A = 'x' AND", 12, "", "expected a field name"),
            ("(A = 'x'", 9, "", "expected ) to close the ( at column 1"),
            ("A = 'x')", 8, ")", "expected AND, OR"),
            ("A = 'unterminated", 5, "'unterminated", "unterminated string"),
            ("A ! 'x'", 3, "!", "'!' must be followed by '='"),
            ("A = 'x' ; DROP", 9, ";", "unexpected character"),
            ("A IN 'x'", 6, "'x'", "expected ( after IN"),
            ("A IN ('x' 'y')", 11, "'y'", "expected , or )"),
            ("A BETWEEN 1 OR 2", 13, "OR", "expected AND in BETWEEN"),
            ("A IS 'x'", 6, "'x'", "expected NULL after IS"),
            ("ORDER StartTime", 7, "StartTime", "expected BY after ORDER"),
            ("ORDER BY WorkflowType", 10, "WorkflowType", "ORDER BY takes StartTime or CloseTime"),
            ("A = 12abc", 5, "12abc", "a number runs into letters"),
            ("A = 99999999999999999999", 5, "99999999999999999999", "integer out of range"),
            ("AND = 'x'", 1, "AND", "expected a field name"),
            ("A = OR", 5, "OR", "expected a value"),
            ("A = ''' ", 5, "''' ", "unterminated string"),
        ]
        for item in cases {
            guard let error = error(item.query) else {
                Issue.record("\(item.query) must be refused")
                continue
            }
            #expect(error.column == item.column, "\(item.query): \(error)")
            #expect(error.token == item.token, "\(item.query): \(error)")
            #expect(error.reason.contains(item.reason), "\(item.query): \(error)")
            #expect(error.description.contains("column \(item.column)"), "\(error)")
        }
    }

    @Test("columns count characters, not bytes, after unicode text")
    func unicodeColumns() {
        // 'Überweisung 🚀' is 15 characters but 20 bytes.
        let error = error("WorkflowType = 'Überweisung 🚀' AND")
        #expect(error?.column == 35)
        #expect(error?.description == "invalid query at column 35 at the end of the query: expected a field name")
    }

    @Test("hostile inputs are refused with a clear error")
    func hostile() {
        let deep = String(repeating: "(", count: 40) + "A = 'x'" + String(repeating: ")", count: 40)
        #expect(error(deep)?.reason.contains("nesting deeper than 32") == true)
        #expect(error(deep)?.column == 33)
        let notChain = String(repeating: "NOT ", count: 33) + "A = 'x'"
        #expect(error(notChain)?.reason.contains("nesting deeper than 32") == true)
        #expect(error(String(repeating: "(", count: 32) + "A = 'x'" + String(repeating: ")", count: 32)) == nil)

        let long = "A = '" + String(repeating: "x", count: 5_000) + "'"
        #expect(error(long)?.reason.contains("at most 4096") == true)
        #expect(error(long)?.column == 0)

        let bigLiteral = "A = '" + String(repeating: "x", count: 1_100) + "'"
        #expect(error(bigLiteral)?.reason.contains("longer than 1024 bytes") == true)
        #expect(error(bigLiteral)?.column == 5)

        let inList = "A IN (" + (0..<300).map(String.init).joined(separator: ",") + ")"
        let inError = error(inList)
        #expect(inError?.reason.contains("at most 256 values") == true)
        #expect(error("A IN (" + (0..<256).map(String.init).joined(separator: ",") + ")") == nil)

        let many = (0..<130).map { "A\($0) = 1" }.joined(separator: " OR ")
        #expect(error(many)?.reason.contains("more than 128 conditions") == true)

        let nul = error("A = 'x\u{0}y'")
        #expect(nul?.reason.contains("NUL") == true)
        #expect(nul?.column == 7)
        #expect(error("A = 'x' \u{0}")?.column == 9)
        #expect(error("A = 'x' \u{7}")?.token == "U+7")
    }
}

/// Typing a parsed query against the namespace: unknown fields and ill-typed values.
@Suite("Visibility query typing")
struct VisibilityTypingTests {
    /// An engine with `Amount` (int), `Priority` (double), `Urgent` (bool), `Region` (keyword) registered.
    static func engine() -> WorkflowEngine {
        var harness = Harness()
        var request = Ballast_V1_AddSearchAttributesRequest()
        request.searchAttributes = ["Amount": .int, "Priority": .double, "Urgent": .bool, "Region": .keyword, "DueAt": .datetime]
        #expect(harness.apply(.addSearchAttributes(request)).response.rejection == nil)
        harness.start("w")
        return harness.engine
    }

    func error(_ engine: WorkflowEngine, _ text: String) -> VisibilityQueryError? {
        do {
            _ = try engine.listWorkflows(namespace: "", query: ParsedVisibilityQuery(parsing: text), pageSize: 10)
            return nil
        } catch {
            return error
        }
    }

    @Test("well-typed queries over built-ins and registered attributes are accepted")
    func accepted() {
        let engine = Self.engine()
        for text in [
            "WorkflowType = 'Transfer' AND ExecutionStatus = 'Running' AND StartTime > '2026-11-24T00:00:00Z'",
            "ExecutionStatus IN ('Completed', Failed, 'cancelled') OR ExecutionStatus != 'Running'",
            "Amount BETWEEN 10 AND 20 AND Priority > 1 AND Urgent = TRUE AND Region STARTS_WITH 'eu-'",
            "DueAt < '2026-11-24' AND CloseTime IS NULL AND ExecutionDuration > '1h30m'",
            "StartTime >= 1700000000000000000 AND RunId != 'x' AND TaskQueue IN ('q')",
            "CustomKeywordField = 'x' OR CustomKeywordListField = 'y' OR CustomIntField > 3",
        ] {
            #expect(error(engine, text) == nil, "\(text): \(String(describing: error(engine, text)))")
        }
    }

    @Test("ill-typed and unknown names are refused at the offending column")
    func refused() {
        let engine = Self.engine()
        let cases: [(String, Int, String)] = [
            ("Amount = 'abc'", 10, "Amount is int: expected an integer, got a string"),
            ("Amount = 1.5", 10, "expected an integer, got a decimal number"),
            ("Urgent = 'yes'", 10, "Urgent is bool: expected TRUE or FALSE"),
            ("Region = 5", 10, "Region is keyword: expected a quoted string, got an integer"),
            ("Unknown = 'x'", 1, "unknown field Unknown"),
            ("workflowtype = 'x'", 1, "did you mean WorkflowType"),
            ("ExecutionStatus = 'Sleeping'", 19, "unknown ExecutionStatus 'Sleeping'"),
            ("ExecutionStatus > 'Running'", 1, "does not support >"),
            ("StartTime > 'yesterday'", 13, "RFC 3339"),
            ("StartTime > '2026-02-30T00:00:00Z'", 13, "RFC 3339"),
            ("Amount STARTS_WITH '1'", 1, "does not support STARTS_WITH"),
            ("Urgent BETWEEN TRUE AND FALSE", 1, "does not support BETWEEN"),
            ("ExecutionDuration > 'forever'", 21, "duration"),
            ("WorkflowType = 'T' AND Priority = 'high'", 35, "Priority is double: expected a number"),
        ]
        for (text, column, reason) in cases {
            guard let found = error(engine, text) else {
                Issue.record("\(text) must be refused")
                continue
            }
            #expect(found.column == column, "\(text): \(found)")
            #expect(found.description.contains(reason), "\(text): \(found)")
        }
    }
}
