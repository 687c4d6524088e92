@testable import BallastServer
import Testing

@Suite("The leader writes the newest engine format that every member applies")
struct FormatAgreementTests {
    @Test("the agreed format is the lowest this node and every member in force report; a silent member counts as format 1")
    func agreement() {
        var agreement = FormatAgreement()
        #expect(agreement.agreedFormat(members: [], ownFormat: 3) == 3, "a lone node decides for itself")
        #expect(agreement.agreedFormat(members: [], ownFormat: 1) == 1)
        #expect(agreement.agreedFormat(members: ["2", "3"], ownFormat: 3) == 1, "members never heard from count as the oldest build")
        agreement.record(member: "2", format: 3)
        #expect(agreement.agreedFormat(members: ["2", "3"], ownFormat: 3) == 1)
        agreement.record(member: "3", format: nil)
        #expect(agreement.agreedFormat(members: ["2", "3"], ownFormat: 3) == 1, "a status without the field is a build before it: format 1")
        #expect(agreement.toAsk(members: ["2", "3"], everyone: false, ownFormat: 3) == ["3"])
        agreement.record(member: "3", format: 2)
        #expect(agreement.agreedFormat(members: ["2", "3"], ownFormat: 3) == 2, "the build before format 3: eager entries, old retry arithmetic")
        #expect(agreement.toAsk(members: ["2", "3"], everyone: false, ownFormat: 3) == ["3"])
        #expect(agreement.toAsk(members: ["2", "3"], everyone: false, ownFormat: 2).isEmpty)
        agreement.record(member: "3", format: 3)
        #expect(agreement.agreedFormat(members: ["2", "3"], ownFormat: 3) == 3)
        #expect(agreement.agreedFormat(members: ["2", "3"], ownFormat: 2) == 2, "never above this node's own")
        #expect(agreement.toAsk(members: ["2", "3"], everyone: false, ownFormat: 3).isEmpty)
        #expect(agreement.toAsk(members: ["2", "3"], everyone: true, ownFormat: 3) == ["2", "3"])
        #expect(agreement.agreedFormat(members: ["2", "3", "4"], ownFormat: 3) == 1, "a new member must report first")
        agreement.record(member: "2", format: 1)
        #expect(agreement.agreedFormat(members: ["2", "3"], ownFormat: 3) == 1, "a member that now reports an older build lowers it")
    }
}
