package protocol

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Exchange is one request and its response as a proxy tee sees them. It
// lives here, not in proxy, so that what implements a tee (the archive)
// depends on the protocol and never on the proxy.
type Exchange struct {
	ClientID string
	Request  kmsg.Request
	Response kmsg.Response // nil for a Produce request with acks=0
	// Acked is when the response arrived from the broker (for acks=0,
	// when the request was forwarded).
	Acked time.Time
	// Retain, if set, keeps the buffer Request aliases (a Produce
	// request's batches) past Observe: the proxy does not reuse it until
	// the release it returns is called, once. A tee that keeps the
	// batches calls it instead of copying them. Nil where the request
	// aliases nothing a tee may keep; at most one call.
	Retain func() (release func())
}
