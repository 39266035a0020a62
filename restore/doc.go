// Package restore replays an archive into a Kafka cluster: topics renamed
// or not, up to a point in time or offset, transaction-aware, with an
// offset map and consumer-group positions translated to match.
//
//	a, _ := archive.OpenArchive(ctx, store, key)
//	rep, err := restore.Run(ctx, restore.Options{
//		Archive: a, Client: target,
//		Topics:  []restore.TopicMapping{restore.MustTopicMapping("orders:orders-restored")},
//		Until:   backupTime,
//		Groups:  []restore.GroupMapping{{Source: "billing", Target: "billing"}},
//	})
//
// Batches are replayed whole, as the producer sent them, under the
// restore's own idempotent producer: only the producer id, epoch, sequence
// and transactional bit change in the header (and so the CRC). A batch is
// re-encoded only when it must change: split by a cut inside it, stamped
// with the archived LogAppendTime, or given an offset header.
//
// A restore is resumable: run again, it finds in each target partition the
// prefix it already wrote (checking the last batch there against the one
// it would write) and continues after it. A target partition holding
// anything else is refused unless Force.
package restore
