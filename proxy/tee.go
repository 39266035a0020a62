package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/protocol"
)

// Tee receives a copy of the exchanges an archive needs: produced batches
// with the offsets the broker assigned, commits, transaction outcomes and
// admin changes. The proxy calls it; it never imports what implements it.
type Tee interface {
	// Keys lists the API keys whose exchanges the tee observes. New calls
	// it once. The proxy keeps clients at versions of these keys kmsg can
	// decode.
	Keys() []int16

	// Observe is called on a connection's upstream goroutine when the
	// response to a request of one of Keys has arrived, before the
	// response is written to the client. Request is a decoded message that
	// aliases a pooled frame buffer (a Produce request's batches are not
	// copied): it is valid only until Observe returns, so the tee copies
	// what it keeps of it, or calls x.Retain to keep the buffer until it
	// releases it. Response is decoded with copies and may be kept.
	// A request the broker answers with no response (Produce with acks=0)
	// is observed on the client goroutine as it is forwarded, with a nil
	// Response.
	//
	// If Observe returns a wait function, the proxy calls it before the
	// response goes to the client: it blocks until what the tee keeps of
	// this exchange is durable. It must return within a bounded time
	// whatever happens to the tee's storage; the response is sent when it
	// returns, whatever the outcome.
	Observe(x *Exchange) (wait func())

	// Prepare is called on the client goroutine for each request of one
	// of Keys before it is forwarded. The requests it returns are sent
	// upstream first, on the same connection (so with the client's
	// authentication), and their responses are shown to Observe and never
	// to the client. The archive uses it to resolve a topic id it has not
	// seen (Produce v13 names topics only by id) with a Metadata request.
	Prepare(req kmsg.Request) []kmsg.Request
}

// internalCorr is the correlation id of the proxy's own requests. Responses
// are matched by position in the in-flight FIFO; the id only has to be one
// the check can tell apart, and clients count up from zero.
const internalCorr = -0x414d4252 // "AMBR", negated

// sendInternal queues a request of the proxy's own ahead of the client's.
func (c *conn) sendInternal(w *frameWriter, req kmsg.Request) {
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("amber-proxy")).AppendRequest(nil, req, internalCorr)
	c.push(w, inflight{key: req.Key(), version: req.GetVersion(), corr: internalCorr,
		decode: true, internal: true, req: req, clientID: "amber-proxy"})
	w.write(frame, nil)
}

// Exchange is protocol.Exchange: one request and its response.
type Exchange = protocol.Exchange
