package proxy

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// inflight is one request forwarded upstream whose response is awaited. A
// connection's in-flight requests form a FIFO (a buffered channel): Kafka
// brokers answer the requests of one connection in the order they came, so
// the response at the head of the upstream stream always belongs to the
// oldest entry. The client goroutine pushes an entry before it writes the
// request upstream; the upstream goroutine pops it when the response
// arrives. Produce with acks=0 gets no response and so no entry.
type inflight struct {
	key     int16
	version int16
	corr    int32
	start   time.Time
	// decode: the response must be decoded, because it can carry broker
	// addresses or is an ApiVersions response to cap.
	decode bool
	// raw: a SASL v0 token (after SaslHandshake v0): neither it nor its
	// response carry a Kafka header.
	raw bool
	// splice: a large response may go from socket to socket unread, and so
	// undecoded even if decode is set (see classify and spliceResponse).
	splice bool

	// For requests the tee observes: the decoded request, the client id,
	// and the frame buffer the request aliases (a Produce request's
	// batches), returned to the pool once the tee has seen the response.
	req      kmsg.Request
	clientID string
	owned    *[]byte

	// internal: a request the proxy sent on its own (Tee.Prepare); its
	// response goes to the tee, never to the client.
	internal bool
}
