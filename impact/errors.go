package impact

import "errors"

// ErrUnknownTopic is returned when a topic asked for has no batch in the
// archive.
var ErrUnknownTopic = errors.New("topic not in the archive")

// errStop ends an archive scan early.
var errStop = errors.New("stop")
