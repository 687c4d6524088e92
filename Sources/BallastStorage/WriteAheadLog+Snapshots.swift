import BallastRaft

extension WriteAheadLog {
    /// Stores a locally taken snapshot durably, then removes older snapshot files. Entries stay until `compact`.
    public func saveSnapshot(_ snapshot: Snapshot) throws {
        try checkUsable()
        try checkNotStale(snapshot)
        // A snapshot file that cannot be written for lack of space is removed and changes
        // nothing: the log keeps every entry, so the log stays usable.
        let name = try writeSnapshotFile(snapshot)
        try poisoningOnFailure {
            snapshotMetadata = snapshot.metadata
            try removeSnapshots(except: name)
        }
    }

    /// Writes a snapshot file; poisons the log on any failure but lack of space before the rename.
    private func writeSnapshotFile(_ snapshot: Snapshot) throws -> String {
        do {
            return try SnapshotFile.write(snapshot, directory: directory)
        } catch let error as StorageError where error.isNoSpace {
            throw error
        } catch {
            failure = "\(error)"
            throw error
        }
    }

    /// Stores a snapshot received from the leader durably and drops every stored entry.
    ///
    /// Order (each step durable before the next): snapshot file; a new segment starting with the
    /// hard state and a reset record; deletion of the older segments and snapshots. A crash at
    /// any point recovers either the old log or the snapshot with an empty log after it.
    public func installSnapshot(_ snapshot: Snapshot) throws {
        try checkUsable()
        try checkNotStale(snapshot)
        let name = try writeSnapshotFile(snapshot)
        pending.removeAll(keepingCapacity: true)  // unwritten records are superseded by the snapshot
        // A new segment that cannot be created for lack of space leaves the old log in place
        // and usable (a crash here recovers as after an interrupted install): retry the install.
        try rollSegment()
        try poisoningOnFailure {
            snapshotMetadata = snapshot.metadata
            encode(.reset(index: snapshot.metadata.index, term: snapshot.metadata.term))
            lastIndex = snapshot.metadata.index
            try sync()
            try deleteClosedSegments { _ in true }
            try removeSnapshots(except: name)
        }
    }

    /// Deletes the oldest segments whose entries all lie at or below `index` (capped at the snapshot index).
    ///
    /// Only a prefix of segments is deleted, and never the active one; the log is synced first so
    /// the hard state at the head of the active segment is durable before older copies go.
    public func compact(through index: LogIndex) throws {
        try checkUsable()
        let limit = min(index, snapshotMetadata?.index ?? .zero)
        guard let oldest = segments.first, oldest.maxEntryIndex <= limit else { return }
        try sync()
        try poisoningOnFailure {
            try deleteClosedSegments { $0.maxEntryIndex <= limit }
        }
    }

    /// Deletes closed segments from the oldest while `shouldDelete` holds, then fsyncs the directory.
    private func deleteClosedSegments(while shouldDelete: (SegmentInfo) -> Bool) throws {
        var deleted = 0
        while let oldest = segments.first, shouldDelete(oldest) {
            try Posix.unlink(directory + "/" + oldest.name)
            segments.removeFirst()
            deleted += 1
        }
        if deleted > 0 {
            statistics.segmentsDeleted += deleted
            try Posix.syncDirectory(directory)
        }
    }

    /// Removes every snapshot file but `keep` (called once `keep` is durable).
    private func removeSnapshots(except keep: String) throws {
        var removed = false
        for name in try Posix.listDirectory(directory) where SnapshotFile.parse(name: name) != nil && name != keep {
            try Posix.unlink(directory + "/" + name)
            removed = true
        }
        if removed { try Posix.syncDirectory(directory) }
    }

    /// Throws if `snapshot` is older than the stored one.
    private func checkNotStale(_ snapshot: Snapshot) throws {
        if let stored = snapshotMetadata, snapshot.metadata.index < stored.index {
            throw StorageError.staleSnapshot(stored: stored.index, offered: snapshot.metadata.index)
        }
    }
}
