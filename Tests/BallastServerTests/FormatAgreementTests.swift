@testable import BallastServer
import Testing

@Suite("Eager dispatch waits until every member applies engine format 2")
struct FormatAgreementTests {
    @Test("agreed only when this node and every member in force report format 2; a silent or older member keeps it off")
    func agreement() {
        var agreement = FormatAgreement()
        #expect(agreement.agreed(members: [], ownFormat: 2), "a lone node decides for itself")
        #expect(!agreement.agreed(members: [], ownFormat: 1))
        #expect(!agreement.agreed(members: ["2", "3"], ownFormat: 2), "members never heard from count as older builds")
        agreement.record(member: "2", format: 2)
        #expect(!agreement.agreed(members: ["2", "3"], ownFormat: 2))
        agreement.record(member: "3", format: nil)
        #expect(!agreement.agreed(members: ["2", "3"], ownFormat: 2), "a status without the field is a build before it: format 1")
        #expect(agreement.toAsk(members: ["2", "3"], everyone: false) == ["3"])
        agreement.record(member: "3", format: 2)
        #expect(agreement.agreed(members: ["2", "3"], ownFormat: 2))
        #expect(agreement.toAsk(members: ["2", "3"], everyone: false).isEmpty)
        #expect(agreement.toAsk(members: ["2", "3"], everyone: true) == ["2", "3"])
        #expect(!agreement.agreed(members: ["2", "3", "4"], ownFormat: 2), "a new member must report first")
        agreement.record(member: "2", format: 1)
        #expect(!agreement.agreed(members: ["2", "3"], ownFormat: 2), "a member that now reports an older build turns it off")
    }
}
