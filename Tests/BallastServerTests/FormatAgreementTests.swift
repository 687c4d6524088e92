import BallastEngine
@testable import BallastServer
import Foundation
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

    @Test("the format floor file: absent is nil, a saved format reads back, anything else is refused naming the file")
    func floorFile() throws {
        let directory = NSTemporaryDirectory() + "ballast-floor-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = EngineFormatFloorFile(dataDirectory: directory)
        #expect(try file.load() == nil)
        try file.save(newestEngineFormatVersion)
        #expect(try file.load() == newestEngineFormatVersion)
        #expect(try String(contentsOfFile: file.path, encoding: .utf8) == "\(newestEngineFormatVersion)\n")
        for bad in ["", "6", "0\n", "\(newestEngineFormatVersion + 1)\n", "x\n", " 3\n", String(repeating: "1", count: 40) + "\n"] {
            try Data(bad.utf8).write(to: URL(fileURLWithPath: file.path))
            #expect(throws: DurableFileError.self, "\(bad.debugDescription)") { _ = try file.load() }
        }
    }
}
