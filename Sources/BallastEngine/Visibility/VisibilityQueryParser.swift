/// One lexical token of a visibility query.
struct QueryToken: Equatable {
    enum Kind: Equatable {
        case name(String)
        case quotedName(String)
        case string(String)
        case integer(Int64)
        case double(Double)
        case comparison(QueryComparison)
        case leftParen, rightParen, comma, end
    }

    var kind: Kind
    var column: Int
    var text: String

    /// The keyword this token spells (upper-cased), if it is a bare name.
    var keyword: String? {
        if case .name(let name) = kind { return name.uppercased() }
        return nil
    }
}

/// Splits a query into tokens; rejects NUL and control characters, unterminated strings and
/// out-of-range numbers with their column.
struct QueryLexer {
    private let characters: [Character]
    private var position = 0

    init(_ characters: [Character]) { self.characters = characters }

    mutating func tokens() throws(VisibilityQueryError) -> [QueryToken] {
        var tokens: [QueryToken] = []
        while true {
            let token = try next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private func error(_ reason: String, at start: Int) -> VisibilityQueryError {
        let end = min(characters.count, max(start + 1, position))
        return VisibilityQueryError(reason, column: start + 1, token: String(characters[start..<end]))
    }

    private mutating func next() throws(VisibilityQueryError) -> QueryToken {
        while position < characters.count, characters[position].isWhitespace { position += 1 }
        guard position < characters.count else { return QueryToken(kind: .end, column: characters.count + 1, text: "") }
        let start = position
        let character = characters[position]
        let kind: QueryToken.Kind
        switch character {
        case "(": position += 1; kind = .leftParen
        case ")": position += 1; kind = .rightParen
        case ",": position += 1; kind = .comma
        case "=", "!", "<", ">": kind = try comparison(start)
        case "'", "\"": kind = .string(try quoted(start, quote: character))
        case "`": kind = .quotedName(try quoted(start, quote: "`"))
        default:
            if character.isNumber || (character == "-" && position + 1 < characters.count && characters[position + 1].isNumber) {
                kind = try number(start)
            } else if character.isLetter || character == "_" {
                while position < characters.count, characters[position].isLetter || characters[position].isNumber
                        || characters[position] == "_" { position += 1 }
                let name = String(characters[start..<position])
                guard name.utf8.count <= VisibilityQueryLimits.maxLiteralBytes else {
                    throw error("a name is longer than \(VisibilityQueryLimits.maxLiteralBytes) bytes", at: start)
                }
                kind = .name(name)
            } else if character == "\0" {
                position += 1
                throw VisibilityQueryError("the query contains a NUL character", column: start + 1, token: "\\0")
            } else {
                position += 1
                let shown = character.unicodeScalars.allSatisfy { $0.properties.generalCategory == .control }
                    ? "U+" + String(character.unicodeScalars.first?.value ?? 0, radix: 16, uppercase: true) : String(character)
                throw VisibilityQueryError("unexpected character (quote strings with ' and names with `)", column: start + 1, token: shown)
            }
        }
        return QueryToken(kind: kind, column: start + 1, text: String(characters[start..<position]))
    }

    private mutating func comparison(_ start: Int) throws(VisibilityQueryError) -> QueryToken.Kind {
        let first = characters[position]
        position += 1
        let second: Character? = position < characters.count ? characters[position] : nil
        switch (first, second) {
        case ("=", _): return .comparison(.equal)
        case ("!", "="?): position += 1; return .comparison(.notEqual)
        case ("<", ">"?): position += 1; return .comparison(.notEqual)
        case ("<", "="?): position += 1; return .comparison(.lessOrEqual)
        case (">", "="?): position += 1; return .comparison(.greaterOrEqual)
        case ("<", _): return .comparison(.less)
        case (">", _): return .comparison(.greater)
        default: throw error("'!' must be followed by '=' (use != or NOT)", at: start)
        }
    }

    /// A quoted string; the quote character or a backslash is escaped by a backslash, or the
    /// quote by doubling it.
    private mutating func quoted(_ start: Int, quote: Character) throws(VisibilityQueryError) -> String {
        position += 1
        var text = ""
        var bytes = 0
        while position < characters.count {
            var character = characters[position]
            if character == "\0" {
                throw VisibilityQueryError("the query contains a NUL character", column: position + 1, token: "\\0")
            }
            if character == quote {
                if position + 1 < characters.count, characters[position + 1] == quote {
                    position += 1
                } else {
                    position += 1
                    return text
                }
            } else if character == "\\", position + 1 < characters.count,
                      characters[position + 1] == quote || characters[position + 1] == "\\" {
                position += 1
                character = characters[position]
            }
            text.append(character)
            bytes += character.utf8.count
            guard bytes <= VisibilityQueryLimits.maxLiteralBytes else {
                throw VisibilityQueryError("a quoted value is longer than \(VisibilityQueryLimits.maxLiteralBytes) bytes",
                                           column: start + 1, token: String(characters[start..<min(characters.count, start + 20)]))
            }
            position += 1
        }
        throw VisibilityQueryError("unterminated \(quote == "`" ? "name" : "string"): no closing \(quote)", column: start + 1,
                                   token: String(characters[start..<min(characters.count, start + 20)]))
    }

    private mutating func number(_ start: Int) throws(VisibilityQueryError) -> QueryToken.Kind {
        if characters[position] == "-" { position += 1 }
        var isInteger = true
        func digits() { while position < characters.count, characters[position].isASCII, characters[position].isNumber { position += 1 } }
        digits()
        if position < characters.count, characters[position] == "." {
            isInteger = false
            position += 1
            digits()
        }
        if position < characters.count, characters[position] == "e" || characters[position] == "E" {
            isInteger = false
            position += 1
            if position < characters.count, characters[position] == "+" || characters[position] == "-" { position += 1 }
            digits()
        }
        if position < characters.count, characters[position].isLetter || characters[position] == "_" {
            while position < characters.count, characters[position].isLetter || characters[position].isNumber { position += 1 }
            throw error("a number runs into letters (quote times and durations: '2026-11-24T00:00:00Z')", at: start)
        }
        let text = String(characters[start..<position])
        guard text.utf8.count <= 64 else { throw error("a number is longer than 64 characters", at: start) }
        if isInteger {
            guard let value = Int64(text) else { throw error("integer out of range (64-bit signed)", at: start) }
            return .integer(value)
        }
        guard let value = Double(text), value.isFinite else { throw error("not a finite number", at: start) }
        return .double(value)
    }
}

/// Recursive-descent parser of the visibility query language:
///
/// ```
/// query      := [or] [ORDER BY (StartTime | CloseTime) [ASC | DESC]]
/// or         := and (OR and)*
/// and        := unary (AND unary)*
/// unary      := NOT unary | '(' or ')' | predicate
/// predicate  := field ( comparison literal | [NOT] IN '(' literal (',' literal)* ')'
///               | [NOT] BETWEEN literal AND literal | STARTS_WITH literal | IS [NOT] NULL )
/// literal    := 'string' | "string" | integer | decimal | TRUE | FALSE | word
/// field      := name | `quoted name`
/// ```
/// Keywords are case-insensitive; AND binds tighter than OR, NOT tighter than AND.
struct VisibilityQueryParser {
    private let text: String
    private let tokens: [QueryToken]
    private var position = 0
    private var depth = 0
    private var predicates = 0

    static let reserved: Set<String> = ["AND", "OR", "NOT", "IN", "BETWEEN", "STARTS_WITH", "IS", "NULL", "ORDER", "BY", "ASC", "DESC"]

    init(_ text: String) throws(VisibilityQueryError) {
        let characters = Array(text)
        guard characters.count <= VisibilityQueryLimits.maxQueryCharacters else {
            throw VisibilityQueryError("the query is \(characters.count) characters long, at most \(VisibilityQueryLimits.maxQueryCharacters) are accepted",
                                       column: 0, token: "")
        }
        var lexer = QueryLexer(characters)
        self.text = text
        tokens = try lexer.tokens()
    }

    private var current: QueryToken { tokens[position] }

    private func error(_ reason: String, _ token: QueryToken? = nil) -> VisibilityQueryError {
        let token = token ?? current
        return VisibilityQueryError(reason, column: token.column, token: token.text)
    }

    private mutating func advance() -> QueryToken {
        let token = tokens[position]
        if token.kind != .end { position += 1 }
        return token
    }

    private mutating func accept(keyword: String) -> Bool {
        guard current.keyword == keyword else { return false }
        position += 1
        return true
    }

    mutating func parse() throws(VisibilityQueryError) -> ParsedVisibilityQuery {
        var query = ParsedVisibilityQuery()
        query.text = text
        if current.kind != .end, current.keyword != "ORDER" { query.expression = try orExpression() }
        if accept(keyword: "ORDER") {
            guard accept(keyword: "BY") else { throw error("expected BY after ORDER") }
            let field = advance()
            let ascending: Bool
            if accept(keyword: "ASC") { ascending = true } else { _ = accept(keyword: "DESC"); ascending = false }
            switch field.kind {
            case .name("StartTime"), .quotedName("StartTime"): query.order = ascending ? .startTimeAscending : .startTimeDescending
            case .name("CloseTime"), .quotedName("CloseTime"): query.order = ascending ? .closeTimeAscending : .closeTimeDescending
            default: throw error("ORDER BY takes StartTime or CloseTime", field)
            }
        }
        guard current.kind == .end else {
            let hint = query.expression == nil ? "expected a condition or ORDER BY" : "expected AND, OR, ORDER BY or the end of the query"
            throw error(hint)
        }
        return query
    }

    private mutating func enter(_ token: QueryToken) throws(VisibilityQueryError) {
        depth += 1
        guard depth <= VisibilityQueryLimits.maxNestingDepth else {
            throw error("nesting deeper than \(VisibilityQueryLimits.maxNestingDepth) levels of parentheses and NOT", token)
        }
    }

    private mutating func orExpression() throws(VisibilityQueryError) -> QueryExpression {
        var terms = [try andExpression()]
        while accept(keyword: "OR") { terms.append(try andExpression()) }
        return terms.count == 1 ? terms[0] : .or(terms)
    }

    private mutating func andExpression() throws(VisibilityQueryError) -> QueryExpression {
        var terms = [try unary()]
        while accept(keyword: "AND") { terms.append(try unary()) }
        return terms.count == 1 ? terms[0] : .and(terms)
    }

    private mutating func unary() throws(VisibilityQueryError) -> QueryExpression {
        let token = current
        if accept(keyword: "NOT") {
            try enter(token)
            defer { depth -= 1 }
            return .not(try unary())
        }
        if token.kind == .leftParen {
            position += 1
            try enter(token)
            defer { depth -= 1 }
            let inner = try orExpression()
            guard current.kind == .rightParen else { throw error("expected ) to close the ( at column \(token.column)") }
            position += 1
            return inner
        }
        return .predicate(try predicate())
    }

    private mutating func predicate() throws(VisibilityQueryError) -> QueryPredicate {
        let fieldToken = advance()
        let field: String
        switch fieldToken.kind {
        case .name(let name) where !Self.reserved.contains(name.uppercased()): field = name
        case .quotedName(let name) where !name.isEmpty: field = name
        case .end: throw error("expected a field name", fieldToken)
        default: throw error("expected a field name (WorkflowType, ExecutionStatus, StartTime, … or a search attribute)", fieldToken)
        }
        predicates += 1
        guard predicates <= VisibilityQueryLimits.maxPredicates else {
            throw error("more than \(VisibilityQueryLimits.maxPredicates) conditions in one query", fieldToken)
        }
        let test: QueryTest
        let opToken = current
        if case .comparison(let comparison) = opToken.kind {
            position += 1
            test = .compare(comparison, try literal())
        } else if accept(keyword: "STARTS_WITH") {
            test = .startsWith(try literal())
        } else if accept(keyword: "IS") {
            let negated = accept(keyword: "NOT")
            guard accept(keyword: "NULL") else { throw error("expected NULL after IS\(negated ? " NOT" : "")") }
            test = .isNull(negated: negated)
        } else {
            let negated = accept(keyword: "NOT")
            if accept(keyword: "IN") {
                test = .oneOf(try list(), negated: negated)
            } else if accept(keyword: "BETWEEN") {
                let low = try literal()
                guard accept(keyword: "AND") else { throw error("expected AND in BETWEEN … AND …") }
                test = .between(low, try literal(), negated: negated)
            } else {
                throw error("expected an operator after \(field) (=, !=, <, <=, >, >=, IN, BETWEEN, STARTS_WITH, IS NULL)")
            }
        }
        return QueryPredicate(field: field, column: fieldToken.column, test: test)
    }

    private mutating func list() throws(VisibilityQueryError) -> [QueryLiteral] {
        guard current.kind == .leftParen else { throw error("expected ( after IN") }
        position += 1
        var values = [try literal()]
        while current.kind == .comma {
            position += 1
            values.append(try literal())
            guard values.count <= VisibilityQueryLimits.maxInListValues else {
                throw error("an IN list holds at most \(VisibilityQueryLimits.maxInListValues) values", tokens[position - 1])
            }
        }
        guard current.kind == .rightParen else { throw error("expected , or ) in the IN list") }
        position += 1
        return values
    }

    private mutating func literal() throws(VisibilityQueryError) -> QueryLiteral {
        let token = current
        let value: QueryLiteralValue
        switch token.kind {
        case .string(let text): value = .string(text)
        case .integer(let number): value = .integer(number)
        case .double(let number): value = .double(number)
        case .name(let word):
            switch word.uppercased() {
            case "TRUE": value = .bool(true)
            case "FALSE": value = .bool(false)
            case let upper where Self.reserved.contains(upper): throw error("expected a value")
            default: value = .word(word)
            }
        case .end: throw error("expected a value")
        default: throw error("expected a value ('text', a number, TRUE or FALSE)")
        }
        position += 1
        return QueryLiteral(value: value, column: token.column, text: token.text)
    }
}
