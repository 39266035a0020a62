package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/amber-kafka/amber/protocol"
)

// conn is one client connection and its upstream connection.
//
// Ownership: the client goroutine (clientLoop) is the only reader of client
// and the only writer of up; the upstream goroutine (upstreamLoop) is the
// only reader of up and the only writer of client. They share the in-flight
// FIFO, the pending count and the flags below, nothing else.
type conn struct {
	p      *Proxy
	bl     *brokerListener // nil for the bootstrap listener
	client net.Conn
	log    *zap.Logger

	inflight chan inflight
	upDone   chan struct{} // closed when the upstream goroutine ends; set before it starts
	pending  atomic.Int64  // requests forwarded whose response is not yet delivered
	draining atomic.Bool   // Shutdown asked: read no new requests
	readDone atomic.Bool   // the client goroutine stopped reading requests

	mu struct {
		sync.Mutex
		up     net.Conn // set once dialed
		closed bool
	}
	closeOnce sync.Once

	// Client goroutine only.
	saslV0 bool // a SaslHandshake v0 was forwarded: unframed tokens may follow
}

func newConn(p *Proxy, c net.Conn, bl *brokerListener) *conn {
	cn := &conn{
		p:        p,
		bl:       bl,
		client:   c,
		inflight: make(chan inflight, p.opts.MaxInFlight),
	}
	listener := "bootstrap"
	if bl != nil {
		listener = bl.upstream
	}
	cn.log = p.log.With(zap.String("client", c.RemoteAddr().String()), zap.String("listener", listener))
	return cn
}

// run serves the connection until either side closes or the proxy drains.
func (c *conn) run() {
	defer c.close()
	if tc, ok := c.client.(*tls.Conn); ok && !c.handshake(tc) {
		return
	}
	up, upDone, err := c.clientLoop()
	if up == nil {
		return
	}
	if err != nil || !c.draining.Load() {
		c.close() // client gone or broken: its responses have nowhere to go
	}
	<-upDone
}

// drain stops reading new requests; the connection closes once the
// responses to those already forwarded are delivered.
func (c *conn) drain() {
	c.draining.Store(true)
	c.client.SetReadDeadline(time.Now())
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.mu.closed = true
		up := c.mu.up
		c.mu.Unlock()
		c.client.Close()
		if up != nil {
			up.Close()
		}
	})
}

// dial connects upstream for the first request.
func (c *conn) dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.p.opts.DialTimeout)
	defer cancel()
	up, addr, err := c.p.dialUpstream(ctx, c.p.upstreamsFor(c.bl))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		up.Close()
		return nil, net.ErrClosed
	}
	c.mu.up = up
	c.log = c.log.With(zap.String("upstream", addr))
	return up, nil
}

// clientLoop reads requests from the client and forwards them upstream. It
// returns the upstream connection (nil if none was dialed), a channel closed
// when the upstream goroutine ends, and the error that ended reading (nil
// for a drain).
func (c *conn) clientLoop() (net.Conn, chan struct{}, error) {
	o := &c.p.opts
	br := bufio.NewReaderSize(c.client, o.BufferBytes)
	var (
		up net.Conn
		w  *frameWriter
	)
	stop := func(err error) (net.Conn, chan struct{}, error) {
		if up != nil {
			w.flush()
		}
		if c.draining.Load() && isTimeout(err) {
			err = nil
		}
		c.readDone.Store(true)
		if up != nil && c.pending.Load() == 0 {
			up.SetReadDeadline(time.Now()) // wake the upstream goroutine to exit
		}
		return up, c.upDone, err
	}
	for {
		if c.draining.Load() {
			return stop(nil)
		}
		var prefix [protocol.SizeLen]byte
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			c.logReadErr(err)
			return stop(err)
		}
		size, err := protocol.CheckSize(prefix, protocol.MinRequestLen, o.MaxFrameBytes, protocol.FromClient)
		if err != nil {
			c.log.Warn("closing client connection: bad frame", zap.Error(err))
			o.Metrics.Error(-1, ReasonBadFrame)
			return stop(err)
		}
		// fb is released once the frame is written, unless an in-flight
		// entry takes it over.
		fb := frames.get(int(size))
		frame := *fb
		if _, err := io.ReadFull(br, frame); err != nil {
			c.log.Warn("closing client connection: request truncated", zap.Int32("size", size), zap.Error(err))
			o.Metrics.Error(-1, ReasonBadFrame)
			return stop(err)
		}
		e, expect, err := c.classify(frame)
		if e.req != nil && e.key == 0 && expect {
			// The decoded Produce request aliases the frame until the tee
			// has seen its response: the upstream goroutine releases it.
			e.owned, fb = fb, nil
		}
		if err != nil {
			c.log.Warn("closing client connection", zap.Int16("api_key", e.key), zap.Int16("api_version", e.version), zap.Error(err))
			o.Metrics.Error(e.key, ReasonBadFrame)
			return stop(err)
		}
		o.Metrics.Request(e.key, int(size)+protocol.SizeLen)

		if up == nil {
			if up, err = c.dial(); err != nil {
				c.log.Warn("closing client connection: no upstream broker answered; check --upstream and that the cluster is up", zap.Error(err))
				o.Metrics.Error(e.key, ReasonUpstreamDial)
				return stop(err)
			}
			w = newFrameWriter(up, o.BufferBytes)
			c.upDone = make(chan struct{})
			go func() {
				defer close(c.upDone)
				c.upstreamLoop(up)
			}()
		}
		if e.req != nil {
			for _, pre := range c.p.opts.Tee.Prepare(e.req) {
				c.sendInternal(w, pre)
			}
		}
		if expect {
			if err := c.push(w, e); err != nil {
				c.log.Info("closing client connection: upstream write failed", zap.Error(err))
				o.Metrics.Error(e.key, ReasonUpstreamClosed)
				return stop(err)
			}
		} else if e.req != nil {
			// acks=0: no response will come; the tee sees the request now.
			c.p.opts.Tee.Observe(&Exchange{ClientID: e.clientID, Request: e.req, Acked: time.Now()})
		}
		err = w.write(prefix[:], frame)
		frames.put(fb) // w has copied or written the frame
		if err != nil {
			c.log.Info("closing client connection: upstream write failed", zap.Error(err))
			o.Metrics.Error(e.key, ReasonUpstreamClosed)
			return stop(err)
		}
		if br.Buffered() == 0 { // nothing more pipelined: send now
			if err := w.flush(); err != nil {
				c.log.Info("closing client connection: upstream write failed", zap.Error(err))
				o.Metrics.Error(e.key, ReasonUpstreamClosed)
				return stop(err)
			}
		}
	}
}

// push adds e to the in-flight FIFO before its request is written
// upstream. At MaxInFlight it blocks until a response frees a slot: that
// is the back-pressure on a client. Before blocking it flushes w, because
// the responses that would free a slot may be owed to requests still
// sitting in w (a client pipelining more than MaxInFlight small requests
// at once would otherwise wait forever). It gives up if the upstream
// goroutine ends, since then no slot will ever be freed.
func (c *conn) push(w *frameWriter, e inflight) error {
	e.start = time.Now()
	c.pending.Add(1)
	select {
	case c.inflight <- e:
		return nil
	default:
	}
	if err := w.flush(); err != nil {
		return err
	}
	select {
	case c.inflight <- e:
		return nil
	case <-c.upDone:
		return net.ErrClosed
	}
}

// classify reads a request's header and decides how its response is
// handled. expect is false for a request that gets no response.
func (c *conn) classify(frame []byte) (e inflight, expect bool, err error) {
	h, err := protocol.ParseRequestHeader(frame)
	e = inflight{key: h.Key, version: h.Version, corr: h.CorrelationID}
	if err != nil && !(c.saslV0 && !h.Known) {
		return e, false, fmt.Errorf("request header: %w", err)
	}
	switch {
	case c.saslV0 && !h.Known:
		// After SaslHandshake v0 the client sends SASL tokens in bare
		// size-prefixed frames. No token (PLAIN, SCRAM, OAUTHBEARER,
		// GSSAPI) begins with a valid key and version, so a frame that is
		// not a known request header is taken as a token.
		e = inflight{key: 17, raw: true}
		return e, true, nil
	case h.Key == 17 && h.Version == 0:
		c.saslV0 = true
	case h.Key == 0:
		if !h.Known {
			return e, false, fmt.Errorf("%w: produce v%d (the proxy knows up to v%d)", ErrUndecodable, h.Version, protocol.MaxVersion(0))
		}
		req := &kmsg.ProduceRequest{Version: h.Version}
		if err := req.UnsafeReadFrom(frame[h.BodyOffset:]); err != nil {
			return e, false, fmt.Errorf("decode produce v%d: %w", h.Version, err)
		}
		if c.p.teed(0) {
			e.req, e.clientID = req, string(h.ClientID)
			e.decode = true
		}
		if req.Acks == 0 {
			return e, false, nil
		}
		e.decode = e.decode || protocol.CarriesAddresses(h.Key, h.Version)
		return e, true, nil
	case h.Key == 18:
		e.decode = true
	case protocol.CarriesAddresses(h.Key, h.Version):
		if !h.Known {
			return e, false, fmt.Errorf("%w: %s v%d (the proxy knows up to v%d)", ErrUndecodable, kmsg.NameForKey(h.Key), h.Version, protocol.MaxVersion(h.Key))
		}
		e.decode = true
	}
	if c.p.teed(h.Key) {
		if !h.Known {
			return e, false, fmt.Errorf("%w: %s v%d (the proxy knows up to v%d)", ErrUndecodable, kmsg.NameForKey(h.Key), h.Version, protocol.MaxVersion(h.Key))
		}
		// Small requests (commits, admin): a copying decode, so the
		// frame buffer is free for the next request.
		req := kmsg.RequestForKey(h.Key)
		req.SetVersion(h.Version)
		if err := req.ReadFrom(frame[h.BodyOffset:]); err != nil {
			return e, false, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(h.Key), h.Version, err)
		}
		e.req, e.clientID = req, string(h.ClientID)
		e.decode = true
	}
	// A Fetch response below v16 is decoded when the proxy reads it, since
	// a broker built on kmsg (kfake) writes NodeEndpoints at any flexible
	// version, but a large one goes socket to socket unread: Apache Kafka
	// writes none below v16, and reading a megabyte to find none is what
	// FetchNodeEndpoints false trades away.
	fetchBelowEndpoints := h.Key == 1 && h.Version <= protocol.FetchNoNodeEndpoints && !c.p.opts.FetchNodeEndpoints && e.req == nil
	e.splice = !e.decode || fetchBelowEndpoints
	return e, true, nil
}

// upstreamLoop reads responses from the broker, matches each to the oldest
// in-flight request, rewrites it if needed and writes it to the client.
func (c *conn) upstreamLoop(up net.Conn) {
	defer c.close()
	o := &c.p.opts
	br := bufio.NewReaderSize(up, o.BufferBytes)
	w := newFrameWriter(c.client, o.BufferBytes)
	sp := newSplicePair(up, c.client)
	var out []byte // a rewritten response, reused
	for {
		var prefix [protocol.SizeLen]byte
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			w.flush()
			if c.readDone.Load() && c.pending.Load() == 0 {
				return // drained: every response delivered
			}
			if !errors.Is(err, net.ErrClosed) {
				c.log.Info("closing client connection: upstream broker closed the connection", zap.Int64("in_flight", c.pending.Load()), zap.Error(err))
				o.Metrics.Error(-1, ReasonUpstreamClosed)
			}
			return
		}
		var e inflight
		select {
		case e = <-c.inflight:
		default:
			c.log.Error("closing client connection: broker sent a response with no request in flight", zap.Binary("prefix", prefix[:]))
			o.Metrics.Error(-1, ReasonCorrelation)
			return
		}
		size, err := protocol.CheckSize(prefix, protocol.MinResponseLen, o.MaxFrameBytes, protocol.FromBroker)
		if e.raw && size >= 0 && size <= o.MaxFrameBytes {
			err = nil // a SASL v0 token response has no header
		}
		if err != nil {
			c.log.Warn("closing client connection: bad frame from broker", zap.String("api", kmsg.NameForKey(e.key)), zap.Error(err))
			o.Metrics.Error(e.key, ReasonBadFrame)
			return
		}

		var ok bool
		if sp.ok() && e.splice && int(size) >= spliceMinBytes {
			// Large, and nothing needs to look into it (a Fetch response,
			// usually): socket to socket, without copying it through the
			// proxy.
			ok = c.spliceResponse(sp, br, w, e, prefix, size)
		} else {
			out, ok = c.relay(br, w, e, prefix, size, out)
		}
		if !ok {
			return
		}
		o.Metrics.Response(e.key, int(size)+protocol.SizeLen, time.Since(e.start))
		if br.Buffered() == 0 {
			if err := w.flush(); err != nil {
				return // client gone; the client goroutine logs it
			}
		}
		if c.pending.Add(-1) == 0 && c.readDone.Load() {
			w.flush()
			return
		}
	}
}

// relay reads a response into a pooled buffer, checks its correlation id,
// has process decode it if the request asked for that, and queues it on w
// unless the proxy sent the request itself. It returns out, the buffer for
// rewritten responses, and false if the connection must close (logged).
func (c *conn) relay(br *bufio.Reader, w *frameWriter, e inflight, prefix [protocol.SizeLen]byte, size int32, out []byte) ([]byte, bool) {
	o := &c.p.opts
	fb := frames.get(int(size))
	frame := *fb
	if _, err := io.ReadFull(br, frame); err != nil {
		c.log.Info("closing client connection: upstream broker closed mid-response", zap.String("api", kmsg.NameForKey(e.key)), zap.Error(err))
		o.Metrics.Error(e.key, ReasonUpstreamClosed)
		return out, false
	}
	if !e.raw { // a SASL v0 token response has no header
		if corr := protocol.CorrelationID(frame); corr != e.corr {
			c.mismatch(e, corr)
			return out, false
		}
	}
	if e.decode {
		var (
			wait func()
			err  error
		)
		out, wait, err = c.process(&e, frame, out[:0])
		if err != nil {
			c.log.Error("closing client connection: cannot rewrite response", zap.String("api", kmsg.NameForKey(e.key)), zap.Int16("api_version", e.version), zap.Error(err))
			o.Metrics.Error(e.key, ReasonRewrite)
			return out, false
		}
		if out != nil {
			frame = out[protocol.SizeLen:]
			binary.BigEndian.PutUint32(prefix[:], uint32(len(frame)))
		}
		if wait != nil {
			w.flush() // responses before this one need not wait
			wait()
		}
	}
	if !e.internal { // the proxy's own request: its response stays here
		w.write(prefix[:], frame)
	}
	// Written, and the decoded response is gone: nothing aliases the frame.
	// A teed request's buffer goes back now too, once its response is
	// written (and after the tee's wait, though the tee may not rely on
	// it), unless the tee retained it (nil then): it puts it back itself.
	frames.put(fb)
	frames.put(e.owned)
	return out, true
}

func (c *conn) mismatch(e inflight, got int32) {
	c.log.Error("closing client connection: correlation id mismatch, the connection is out of sync",
		zap.Int32("expected", e.corr), zap.Int32("got", got), zap.String("api", kmsg.NameForKey(e.key)), zap.Int16("api_version", e.version))
	c.p.opts.Metrics.Error(e.key, ReasonCorrelation)
}

// unsafeReader is implemented by every kmsg message: decoding that aliases
// the input instead of copying it. Safe here because the frame buffer is not
// reused until the decoded response has been re-encoded.
type unsafeReader interface{ UnsafeReadFrom([]byte) error }

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// handshake completes a client's TLS handshake within DialTimeout, so that
// a failure is reported as what it is rather than as a read error.
func (c *conn) handshake(tc *tls.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.p.opts.DialTimeout)
	defer cancel()
	err := tc.HandshakeContext(ctx)
	if err == nil {
		return true
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		c.log.Warn("closing client connection: TLS handshake failed; the client likely speaks plaintext to a TLS listener", zap.Error(err))
	} else {
		c.log.Warn("closing client connection: TLS handshake failed; check the client's certificate and trusted CAs", zap.Error(err))
	}
	c.p.opts.Metrics.Error(-1, ReasonTLS)
	return false
}

// logReadErr logs why reading from the client ended, naming the likely
// cause where one is known.
func (c *conn) logReadErr(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.draining.Load() && isTimeout(err):
		c.log.Debug("client connection closed", zap.Error(err))
	default:
		c.log.Info("client connection ended", zap.Error(err))
	}
}
