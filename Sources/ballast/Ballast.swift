import ArgumentParser

/// The one Ballast executable; each responsibility is a subcommand.
@main
struct Ballast: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ballast",
        abstract: "Ballast: durable execution on a Raft-replicated history.",
        subcommands: [ServerCommand.self, DevCommand.self, ClusterCommand.self, WorkflowCommand.self, SimCommand.self, BenchCommand.self,
                      AdminCommand.self, ChaosCommand.self])
}
