package proxy

import "errors"

var (
	// ErrClosed is returned by Start on a proxy already shut down.
	ErrClosed = errors.New("proxy closed")
	// ErrNoUpstream is returned when no upstream broker answers.
	ErrNoUpstream = errors.New("no upstream broker answered")
	// ErrCorrelation marks a response whose correlation id is not the one
	// the oldest in-flight request expects: the connection is out of sync
	// and is closed.
	ErrCorrelation = errors.New("correlation id mismatch")
	// ErrUndecodable marks a request the proxy must decode (to rewrite
	// addresses in its response) at a version kmsg does not know.
	ErrUndecodable = errors.New("request version beyond what the proxy can decode")
)
