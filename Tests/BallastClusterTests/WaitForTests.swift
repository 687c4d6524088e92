import Testing

@Suite("waitFor: the cluster tests' polling helper")
struct WaitForTests {
    @Test("a look that began before the deadline and ended after it is followed by one more look")
    func looksAgainAfterALateAnswer() async throws {
        var looks = 0
        try await waitFor("the second look", timeout: .milliseconds(500)) {
            looks += 1
            guard looks > 1 else {
                // A slow answer (a loaded machine), false when it began, returned after the deadline.
                try await Task.sleep(for: .milliseconds(700))
                return false
            }
            return true
        }
        #expect(looks == 2)
    }

    @Test("a look that began after the deadline and finds the condition false fails the wait")
    func failsAfterTheDeadline() async throws {
        var looks = 0
        await #expect(throws: ClusterTestFailure.self) {
            try await waitFor("a condition that never holds", timeout: .milliseconds(30)) {
                looks += 1
                return false
            }
        }
        #expect(looks >= 1)
    }
}
