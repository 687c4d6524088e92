import ArgumentParser
import BallastSDK
import Foundation
import TransfersKit

/// `transfers verify`: one JSON line; exit 0 only when money is conserved and nothing is stuck.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every Transfer workflow against the ledger; print one JSON line.",
        discussion: """
            Prints {"transfers","completed","compensated","stuck","running","ledger_before","ledger_after",\
            "conserved"} (plus "in_flight" and "stuck_details"). Exits 0 only when money is conserved and \
            no transfer is stuck; 1 otherwise or when the cluster or the ledger cannot be read.
            """)

    @OptionGroup var common: CommonOptions

    func run() async throws {
        try await reportingFailures {
            guard FileManager.default.fileExists(atPath: common.ledger) else {
                throw CommandFailure("no ledger at \(common.ledger): give the file the workers and `transfers start` used")
            }
            let ledger = try common.openLedger()
            let client = try common.makeClient(identity: "transfers-verify-\(ProcessInfo.processInfo.processIdentifier)")
            let audit: TransferAudit
            do {
                audit = try await TransferServices.audit(client: client, ledger: ledger)
            } catch {
                await client.close()
                throw error
            }
            await client.close()
            say(Self.line(audit))
            guard audit.passed else { throw ExitCode(1) }
        }
    }

    /// The fixed keys first, in the documented order, then the extras.
    static func line(_ audit: TransferAudit) -> String {
        let details = (try? JSONEncoder().encode(audit.stuckDetails)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        let fields = [
            "\"transfers\":\(audit.transfers)", "\"completed\":\(audit.completed)", "\"compensated\":\(audit.compensated)",
            "\"stuck\":\(audit.stuck)", "\"running\":\(audit.running)", "\"ledger_before\":\(audit.ledgerBefore)",
            "\"ledger_after\":\(audit.ledgerAfter)", "\"conserved\":\(audit.conserved)", "\"in_flight\":\(audit.inFlight)",
            "\"stuck_details\":\(details)",
        ]
        return "{" + fields.joined(separator: ",") + "}"
    }
}
