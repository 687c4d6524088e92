import BallastProto

/// A registered workflow type, with its input decoding and output encoding erased.
struct WorkflowDefinition: Sendable {
    /// The code of one run, ready to start: input already decoded.
    typealias Body = @Sendable (WorkflowContext) async throws -> Ballast_V1_Payloads

    /// The workflow type name.
    let name: String
    /// Decodes the input (throwing a clear error on bad input) and returns the run's code.
    let prepare: @Sendable (Ballast_V1_Payloads, DataConverter) throws -> Body

    /// The definition of `W`.
    static func of<W: Workflow>(_ type: W.Type) -> WorkflowDefinition {
        WorkflowDefinition(name: W.name) { payloads, converter in
            let input: W.Input
            if payloads.payloads.isEmpty, let empty = Empty() as? W.Input {
                input = empty
            } else {
                input = try converter.fromPayloads(payloads, as: W.Input.self)
            }
            return { context in
                let output = try await W().run(context: context, input: input)
                return try converter.toPayloads(output)
            }
        }
    }
}

/// The workflow types a worker runs, by name.
struct WorkflowRegistry: Sendable {
    private(set) var definitions: [String: WorkflowDefinition] = [:]

    /// Registers each type; a second type with the same name is a programming error.
    init(_ types: [any Workflow.Type]) {
        for type in types {
            let definition = Self.definition(type)
            precondition(definitions[definition.name] == nil, "workflow type \(definition.name) registered twice")
            definitions[definition.name] = definition
        }
    }

    private static func definition<W: Workflow>(_ type: W.Type) -> WorkflowDefinition { .of(type) }

    /// The registered names, sorted (for error messages).
    var names: [String] { definitions.keys.sorted() }
}
