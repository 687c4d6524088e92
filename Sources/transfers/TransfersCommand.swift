import ArgumentParser
import BallastSDK
import Foundation
import Logging
import TransfersKit

/// `transfers`: the money-transfer reference example (docs/sdk.md, "Example: money transfer").
@main
struct TransfersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfers",
        abstract: "The money-transfer example: workers, a load of transfers, and the ledger check.",
        subcommands: [WorkerCommand.self, StartCommand.self, VerifyCommand.self, BenchCommand.self])
}

/// Flags every subcommand takes.
struct CommonOptions: ParsableArguments {
    @Option(help: "API addresses HOST:PORT, comma-separated (default: $BALLAST_ADDRESS, else the cluster/up ports).")
    var address: String?
    @Option(help: "The SQLite ledger file shared by workers (created if missing).") var ledger: String
    @Option(help: "Namespace.") var namespace = "default"
    @Option(help: "TLS: the cluster's CA bundle, PEM (default: $BALLAST_TLS_CA; none: cleartext).") var tlsCa: String?
    @Option(help: "TLS: this client's certificate, PEM (default: $BALLAST_TLS_CERT).") var tlsCert: String?
    @Option(help: "TLS: this client's private key, PEM (default: $BALLAST_TLS_KEY).") var tlsKey: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "warning"

    static let defaultAddresses = "127.0.0.1:7112,127.0.0.1:7122,127.0.0.1:7132"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel)") }
        guard !ledger.isEmpty else { throw ValidationError("--ledger must name a file") }
    }

    func makeLogger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        return logger
    }

    func makeClient(identity: String, callTimeout: Duration = .seconds(30), cleartext: Bool = false) throws -> BallastClient {
        var options = BallastClientOptions()
        options.namespace = namespace
        options.identity = identity
        options.callTimeout = callTimeout
        do {
            options.tls = try ClientTLSOptions.fromFlags(ca: tlsCa, certificate: tlsCert, key: tlsKey,
                                                         environment: ProcessInfo.processInfo.environment)
            if cleartext { options.tls = nil }
        } catch {
            throw ValidationError("\(error)")
        }
        let list = address ?? ProcessInfo.processInfo.environment["BALLAST_ADDRESS"] ?? Self.defaultAddresses
        do {
            return try BallastClient(addresses: list, options: options)
        } catch {
            throw ValidationError("--address: \(error)")
        }
    }

    func openLedger() throws -> Ledger {
        do {
            return try Ledger(path: ledger, busyTimeout: TransferServices.ledgerBusyTimeout)
        } catch {
            throw CommandFailure("cannot open the ledger \(ledger): \(error)")
        }
    }
}

/// A failure reported as `error: …` on stderr with exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`; prints a failure as `error: …` and exits 1.
func reportingFailures(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Opens `--ack-log FILE` for appending, or nil without the flag.
func openAckLog(_ path: String?) throws -> AckLogWriter? {
    guard let path else { return nil }
    do {
        return try AckLogWriter(path: path)
    } catch {
        throw CommandFailure("\(error)")
    }
}

/// Parses a duration: `500ms`, `30s`, `10m`, `2h`, or a plain number of seconds.
func parseDuration(_ text: String, flag: String) throws -> Duration {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    var number = text
    var scale = 1.0
    for (suffix, factor) in units where text.hasSuffix(suffix) {
        number = String(text.dropLast(suffix.count))
        scale = factor
        break
    }
    guard let value = Double(number), value.isFinite, value > 0, value * scale <= 30 * 86_400 else {
        throw ValidationError("\(flag): '\(text)' is not a duration (e.g. 500ms, 30s, 10m, 2h) of at most 30 days")
    }
    return .milliseconds(Int64((value * scale * 1000).rounded()))
}

extension Duration {
    /// Whole milliseconds.
    var wholeMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
    /// Seconds as a Double.
    var secondsValue: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Runs an action once on SIGTERM or SIGINT.
enum Signals {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    /// Installs the handlers (call once, from the main task).
    static func onTermination(_ action: @escaping @Sendable () -> Void) {
        let once = Once()
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { if once.claim() { action() } }
            source.resume()
            sources.append(source)
        }
    }

    /// True for the first caller only.
    final class Once: @unchecked Sendable {
        private let lock = NSLock()
        private var claimed = false
        func claim() -> Bool {
            lock.withLock {
                defer { claimed = true }
                return !claimed
            }
        }
    }
}
