import BallastSDK
import Testing

@Suite("SDK module")
struct SDKSmokeTests {
    @Test("the SDK reports a version")
    func version() { #expect(!BallastSDK.version.isEmpty) }
}
