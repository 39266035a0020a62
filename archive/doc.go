// Package archive keeps what the proxy tees: the journal, a Pebble store on
// local disk into which every produced batch (with the offset the broker
// assigned and the moment it was acknowledged) and every commit, transaction
// outcome and admin change is written and fsynced; and, from it, the
// coverage of each partition (offset ranges, holes) that `amber ls` shows.
//
//	j, err := archive.OpenJournal(archive.JournalOptions{Dir: "data/journal", Logger: log})
//	tee := archive.NewTee(j, archive.TeeOptions{Durability: archive.Sync})
//	p, err := proxy.New(proxy.Options{Upstreams: ..., Tee: tee})
//
// The on-disk formats are in journal_format.go and docs/FORMAT.md.
package archive
