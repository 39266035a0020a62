// Package impact answers, from an archive, which consumer groups had
// already processed the records of a time window: what an operator needs
// after restoring a service from a backup taken at the window's start,
// so that every other application that consumed the events in between
// can be corrected.
//
//	a, _ := archive.OpenArchive(ctx, store, key)
//	rep, err := impact.Analyze(ctx, impact.Options{
//		Archive: a,
//		Topics:  []string{"orders"},
//		Since:   backupTime,   // 14:00, when the database backup was taken
//		Until:   incidentTime, // 14:15, when the service lost its data
//	})
//	for _, item := range rep.WorkList() { ... } // one per group and partition range
//
// Two things are read, neither of them record data:
//
//   - the window: per partition, the offsets from the first batch the
//     broker acknowledged at or after Since to the end of the last one it
//     acknowledged at or before Until, from the ack times every index
//     holds;
//   - the commit history: every OffsetCommit and TxnOffsetCommit the
//     proxy saw, as archive events. A group's committed offset is the
//     next record it will read, so a group whose highest commit on a
//     partition is past an offset has consumed that record. A
//     transactional commit counts only if its transaction committed: the
//     first EndTxn of the same producer id and epoch at or after it, and
//     from that EndTxn's time.
//
// A group that committed around the proxy (straight to the brokers) left
// no history. For group-partitions without any, the group offset
// snapshots a backfill takes stand in, and the report says so: they give
// a coarser answer (where the group was when the snapshot was taken, not
// when it crossed the window).
//
// The only data read is for a committed offset that falls inside a batch
// with gaps (compacted, fetched by a backfill), to count exactly the
// records below it.
//
// A topic deleted and created again under its name is two topics at the
// same offsets: the window's batches, and the commits and snapshots that
// count, are those of the topic that lived in the window (after its last
// deletion before Since, up to its next one). A window with a deletion
// inside is refused (ErrWindowSpansDeletion).
package impact
