package proxy

import (
	"bufio"
	"io"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/amber-kafka/amber/protocol"
)

// spliceMinBytes is the smallest response forwarded with splice(2) rather
// than read into a buffer and written. Splicing costs a pipe and two system
// calls per piece but no copy; BenchmarkForwardResponse puts the crossover
// at 64-128 KiB on loopback. A variable only so that the benchmark can
// compare both paths.
var spliceMinBytes = 128 << 10

// splicePair is a connection's two sockets when both are plain TCP, so that
// a response can move from one to the other without entering user space
// (Go's TCPConn.ReadFrom splices from another TCPConn). With TLS on either
// side the bytes must pass through the TLS layer, and it is empty.
type splicePair struct{ up, client *net.TCPConn }

func newSplicePair(up, client net.Conn) splicePair {
	u, uok := up.(*net.TCPConn)
	c, cok := client.(*net.TCPConn)
	if !uok || !cok {
		return splicePair{}
	}
	return splicePair{up: u, client: c}
}

func (sp splicePair) ok() bool { return sp.up != nil }

// spliceResponse forwards a response nothing needs to look into (e.splice:
// most often a Fetch response, up to megabytes of records) from the
// upstream socket to the client's. Only the correlation id is checked. The size
// prefix and whatever br already holds of the frame go out through w,
// behind what w holds, in one write; io.CopyN moves the rest socket to
// socket, which Go does with splice(2): the bytes never enter user space.
//
// Go's splice loop forwards each piece as it arrives (cut-through), so a
// megabyte reaches the client in many small writes where the buffered
// path sends it in one. That halves the proxy's CPU per GB but raises the
// client's; docs/BENCHMARKS.md has the numbers, and the store-and-forward
// variant (a pipe filled with the whole response, then emptied) that was
// tried and did not pay for its code. It returns false if the connection
// must close (logged).
func (c *conn) spliceResponse(sp splicePair, br *bufio.Reader, w *frameWriter, e inflight, prefix [protocol.SizeLen]byte, size int32) bool {
	o := &c.p.opts
	// Peek at least the correlation id; at most the frame, since br may
	// already hold the start of the next one.
	head, err := br.Peek(min(int(size), max(br.Buffered(), protocol.MinResponseLen)))
	if err != nil {
		c.log.Info("closing client connection: upstream broker closed mid-response", zap.String("api", kmsg.NameForKey(e.key)), zap.Error(err))
		o.Metrics.Error(e.key, ReasonUpstreamClosed)
		return false
	}
	if corr := protocol.CorrelationID(head); corr != e.corr {
		c.mismatch(e, corr)
		return false
	}
	w.write(prefix[:], head)
	br.Discard(len(head))
	if err := w.flush(); err != nil {
		return false // client gone; the client goroutine logs it
	}
	if _, err := io.CopyN(sp.client, sp.up, int64(size)-int64(len(head))); err != nil {
		c.log.Info("closing client connection: response copy failed", zap.String("api", kmsg.NameForKey(e.key)), zap.Error(err))
		o.Metrics.Error(e.key, ReasonUpstreamClosed)
		return false
	}
	return true
}
