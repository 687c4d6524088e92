import Testing
@testable import TransfersKit

@Suite("transfers example module")
struct TransfersSmokeTests {
    @Test("the module links")
    func links() { _ = TransfersKit.self }
}
