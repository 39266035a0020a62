package impact

import "errors"

// ErrNoArchive is reported by Options.Validate when Archive is nil.
var ErrNoArchive = errors.New("no archive")

// ErrUnknownTopic is returned when a topic asked for has no batch in the
// archive.
var ErrUnknownTopic = errors.New("topic not in the archive")

// ErrWindowSpansDeletion is returned when a topic was deleted (and
// created again under its name) inside the window: the window would mix
// two topics whose offsets overlap.
var ErrWindowSpansDeletion = errors.New("the topic was deleted inside the window")

// errStop ends an archive scan early.
var errStop = errors.New("stop")
