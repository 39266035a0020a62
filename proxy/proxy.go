// Package proxy is a transparent Kafka wire-protocol proxy.
//
// A client bootstraps from Options.Listen. Every response that names a
// broker (Metadata, FindCoordinator, DescribeCluster, KIP-951 NodeEndpoints
// in Produce and Fetch, share-group and quorum responses) is rewritten so
// that it names a per-broker listener of the proxy instead, created the
// first time the broker is seen. Everything else is forwarded as raw bytes,
// API keys and versions the proxy has never heard of included.
//
//	p, err := proxy.New(proxy.Options{
//		Upstreams: []string{"kafka-0:9092"},
//		Listen:    "0.0.0.0:9092",
//		Logger:    log,
//	})
//	if err != nil { ... }
//	if err := p.Start(); err != nil { ... }
//	defer p.Shutdown(ctx) // stop accepting, finish in-flight requests
//
// Goroutines: one accept loop per listener; two per client connection, one
// reading requests from the client and writing them upstream, one reading
// responses from upstream and writing them to the client. Each socket has
// exactly one reader and one writer. See docs/ARCHITECTURE.md.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/amber-kafka/amber/protocol"
)

// Proxy forwards Kafka connections to an upstream cluster. Create it with
// New; Start binds the bootstrap listener.
type Proxy struct {
	opts  Options
	log   *zap.Logger
	addrs *addrMap

	// teeKeys[k] is set for the API keys Options.Tee observes.
	teeKeys [protocol.MaxKey]bool

	wg sync.WaitGroup // accept loops and connection goroutines

	mu struct {
		sync.Mutex
		boot      net.Listener
		conns     map[*conn]struct{}
		closing   bool // Shutdown or Close called: accept nothing new
		nextBoot  int  // upstream the next bootstrap connection tries first
		listeners []net.Listener
	}
}

// New validates opts and returns an unstarted proxy.
func New(opts Options) (*Proxy, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{opts: opts, log: opts.Logger.With(zap.String("component", "proxy"))}
	if opts.Tee != nil {
		for _, k := range opts.Tee.Keys() {
			if k >= 0 && int(k) < protocol.MaxKey {
				p.teeKeys[k] = true
			}
		}
	}
	p.mu.conns = make(map[*conn]struct{})
	p.addrs = newAddrMap(p)
	return p, nil
}

// Start binds the bootstrap listener and the per-broker listeners saved in
// StateDir, and starts accepting. It returns once listening.
func (p *Proxy) Start() error {
	p.mu.Lock()
	if p.mu.closing {
		p.mu.Unlock()
		return ErrClosed
	}
	p.mu.Unlock()
	ln, err := p.listenTCP(p.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", p.opts.Listen, err)
	}
	p.mu.Lock()
	p.mu.boot = ln
	p.mu.Unlock()
	if err := p.addrs.load(); err != nil {
		p.closeListeners()
		return err
	}
	p.log.Info("proxy listening", zap.String("listen", ln.Addr().String()), zap.Strings("upstreams", p.opts.Upstreams),
		zap.String("advertise_host", p.opts.AdvertiseHost), zap.Bool("client_tls", p.opts.ClientTLS != nil),
		zap.Bool("upstream_tls", p.opts.UpstreamTLS != nil))
	p.serve(ln, nil)
	return nil
}

// Addr is the bootstrap listener's address, as bound.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.boot == nil {
		return ""
	}
	return p.mu.boot.Addr().String()
}

// Brokers lists the per-broker listeners created so far.
func (p *Proxy) Brokers() []BrokerInfo { return p.addrs.brokers() }

// listenTCP binds addr, recording the listener for shutdown. A listener
// bound while closing is closed at once.
func (p *Proxy) listenTCP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closing {
		ln.Close()
		return nil, ErrClosed
	}
	p.mu.listeners = append(p.mu.listeners, ln)
	return ln, nil
}

// serve runs an accept loop on ln. bl is nil for the bootstrap listener.
func (p *Proxy) serve(ln net.Listener, bl *brokerListener) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var delay time.Duration
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// Out of file descriptors and the like: back off and
				// retry, as net/http does.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				p.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("delay", delay))
				time.Sleep(delay)
				continue
			}
			delay = 0
			if p.opts.ClientTLS != nil {
				c = tls.Server(c, p.opts.ClientTLS)
			}
			p.startConn(c, bl)
		}
	}()
}

// upstreamsFor returns the addresses a new client connection may be
// forwarded to, in the order to try them.
func (p *Proxy) upstreamsFor(bl *brokerListener) []string {
	if bl != nil {
		return []string{bl.upstream}
	}
	p.mu.Lock()
	start := p.mu.nextBoot
	p.mu.nextBoot = (p.mu.nextBoot + 1) % len(p.opts.Upstreams)
	p.mu.Unlock()
	out := make([]string, 0, len(p.opts.Upstreams))
	for i := range p.opts.Upstreams {
		out = append(out, p.opts.Upstreams[(start+i)%len(p.opts.Upstreams)])
	}
	return out
}

// dialUpstream dials the first of addrs that answers, with TLS if set.
func (p *Proxy) dialUpstream(ctx context.Context, addrs []string) (net.Conn, string, error) {
	var errs []error
	for _, addr := range addrs {
		dctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
		c, err := p.opts.Dial(dctx, "tcp", addr)
		if err == nil && p.opts.UpstreamTLS != nil {
			cfg := p.opts.UpstreamTLS.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName, _, _ = net.SplitHostPort(addr)
			}
			tc := tls.Client(c, cfg)
			if err = tc.HandshakeContext(dctx); err != nil {
				c.Close()
				err = fmt.Errorf("tls handshake: %w", err)
			}
			c = tc
		}
		cancel()
		if err == nil {
			return c, addr, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, "", fmt.Errorf("%w: %w", ErrNoUpstream, errors.Join(errs...))
}

func (p *Proxy) startConn(c net.Conn, bl *brokerListener) {
	p.mu.Lock()
	if p.mu.closing {
		p.mu.Unlock()
		c.Close()
		return
	}
	cn := newConn(p, c, bl)
	p.mu.conns[cn] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	p.opts.Metrics.ConnOpened()
	go func() {
		defer p.wg.Done()
		cn.run()
		p.mu.Lock()
		delete(p.mu.conns, cn)
		p.mu.Unlock()
		p.opts.Metrics.ConnClosed()
	}()
}

func (p *Proxy) closeListeners() {
	p.mu.Lock()
	p.mu.closing = true
	lns := p.mu.listeners
	p.mu.listeners = nil
	p.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
}

// Shutdown drains the proxy: it stops accepting connections, stops reading
// new requests, waits until every request already forwarded has had its
// response delivered, then closes every connection. If ctx ends first, the
// remaining connections are closed at once and ctx's error is returned.
// Safe to call more than once and together with Close.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.closeListeners()
	for _, c := range p.conns() {
		c.drain()
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		p.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes every listener and connection at once, dropping requests in
// flight. Safe to call more than once.
func (p *Proxy) Close() error {
	p.closeListeners()
	for _, c := range p.conns() {
		c.close()
	}
	p.wg.Wait()
	return nil
}

// conns snapshots the open connections, so that they are closed or drained
// without holding mu.
func (p *Proxy) conns() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*conn, 0, len(p.mu.conns))
	for c := range p.mu.conns {
		out = append(out, c)
	}
	return out
}

// decodes reports whether the proxy decodes requests or responses of key,
// and so must keep clients at versions kmsg knows: Produce (for acks),
// ApiVersions, address-bearing responses, and whatever the tee observes.
func (p *Proxy) decodes(key int16) bool {
	if key == 0 || key == 18 || protocol.AddressKey(key) {
		return true
	}
	return key >= 0 && int(key) < protocol.MaxKey && p.teeKeys[key]
}

// maxVersion returns the highest version of key the proxy lets clients use
// (ApiVersions responses are capped to it), and false for a key it only
// forwards, at any version.
func (p *Proxy) maxVersion(key int16) (int16, bool) {
	if !p.decodes(key) {
		return 0, false
	}
	max := protocol.MaxVersion(key)
	if key == 1 && !p.opts.FetchNodeEndpoints {
		max = min(max, protocol.FetchNoNodeEndpoints)
	}
	return max, true
}

// teed reports whether the tee observes key.
func (p *Proxy) teed(key int16) bool {
	return p.opts.Tee != nil && key >= 0 && int(key) < protocol.MaxKey && p.teeKeys[key]
}
