package protocol

import (
	"errors"
	"strconv"
)

var (
	// ErrFrameTooLarge is returned for a size prefix above the configured
	// maximum. The FrameError that wraps it carries a guess at the cause.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrFrameTooSmall is returned for a size prefix too small to hold a
	// header, including negative sizes.
	ErrFrameTooSmall = errors.New("frame too small")
	// ErrTruncated is returned when a header or body ends early.
	ErrTruncated = errors.New("truncated")
	// ErrUnknownKey is returned where a message must be decoded but kmsg does
	// not know its API key.
	ErrUnknownKey = errors.New("unknown api key")
	// ErrUnsupportedVersion is returned where a message must be decoded but
	// its version is beyond what kmsg knows.
	ErrUnsupportedVersion = errors.New("unsupported version")
)

// FrameError describes a frame rejected from its size prefix alone, before
// anything was allocated for it, with a hint naming the likely cause.
type FrameError struct {
	Size int32
	Hint string
	Err  error
}

func (e *FrameError) Error() string {
	s := e.Err.Error() + ": size prefix " + strconv.FormatInt(int64(e.Size), 10)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *FrameError) Unwrap() error { return e.Err }
