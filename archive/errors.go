package archive

import "errors"

var (
	// ErrClosed is returned by a closed journal.
	ErrClosed = errors.New("journal closed")
	// ErrBacklogFull is returned by Append when more than
	// MaxPendingBytes wait to be committed: the disk is not keeping up.
	ErrBacklogFull = errors.New("journal backlog full")
	// ErrFailed is returned once the journal's store failed in a way it
	// cannot recover from while running (a failed WAL write or sync): the
	// proxy goes on without it until restarted.
	ErrFailed = errors.New("journal failed")
	// ErrFormat is returned for a journal entry this version cannot read.
	ErrFormat = errors.New("unknown journal entry format")
	// ErrInUse is returned when another process holds the journal.
	ErrInUse = errors.New("journal in use by another process")

	errStop = errors.New("stop iteration")
)
