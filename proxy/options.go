package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/amber-kafka/amber/protocol"
)

// Defaults for Options fields left zero.
const (
	DefaultListen        = "127.0.0.1:9092"
	DefaultMaxFrameBytes = protocol.DefaultMaxFrameBytes
	DefaultDialTimeout   = 10 * time.Second
	DefaultMaxInFlight   = 1024
	DefaultBufferBytes   = 64 << 10
)

// Options configures a Proxy. The zero value of every field but Upstreams is
// usable; EnsureDefaults fills it in and Validate reports every problem.
type Options struct {
	// Upstreams are the cluster's bootstrap addresses (host:port). Clients
	// connecting to Listen are forwarded to the first that answers.
	// Required.
	Upstreams []string

	// Listen is the bootstrap address clients use instead of the cluster's.
	// Default DefaultListen. Port 0 picks a free port (tests).
	Listen string

	// AdvertiseHost is the host written into every rewritten broker address.
	// Default: Listen's host, or the machine's hostname when Listen's host
	// is empty or a wildcard.
	AdvertiseHost string

	// BrokerPortBase is the first port tried for per-broker listeners; each
	// new broker takes the next free port from there. Default: Listen's port
	// plus one; with Listen's port 0, every broker port is picked by the
	// kernel.
	BrokerPortBase int

	// StateDir is where the broker-to-port assignment is kept, so that a
	// restarted proxy comes back on the same per-broker ports. Default ""
	// (not kept).
	StateDir string

	// MaxFrameBytes bounds every frame read from a client or broker.
	// Default DefaultMaxFrameBytes (100 MiB).
	MaxFrameBytes int32

	// MaxInFlight bounds the requests awaiting a response on one
	// connection; a client past it is not read until responses arrive.
	// Default DefaultMaxInFlight.
	MaxInFlight int

	// BufferBytes is the size of each per-connection read and write
	// buffer. Default DefaultBufferBytes (64 KiB).
	BufferBytes int

	// DialTimeout bounds dialing (and the TLS handshake with) a broker.
	// Default DefaultDialTimeout.
	DialTimeout time.Duration

	// ClientTLS, when set, makes every listener speak TLS to clients. Set
	// ClientAuth and ClientCAs for mTLS. Default nil: plaintext.
	ClientTLS *tls.Config

	// UpstreamTLS, when set, makes the proxy speak TLS to brokers; set
	// Certificates for mTLS. ServerName defaults to each broker's host.
	// Default nil: plaintext.
	UpstreamTLS *tls.Config

	// Dial dials brokers. Default: a net.Dialer with DialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Logger receives the proxy's logs. Default zap.NewNop().
	Logger *zap.Logger

	// Metrics receives counters and latencies. Default: discarded.
	Metrics Metrics

	// Tee, when set, observes the exchanges of the API keys it lists (see
	// Tee). Default nil: nothing is observed.
	Tee Tee

	// FetchNodeEndpoints lets clients use Fetch v16 and later, whose
	// responses can carry the addresses of new partition leaders (KIP-951
	// NodeEndpoints), and has the proxy read and decode every Fetch
	// response that can carry them on the wire (v12+), to rewrite them.
	//
	// Default false: ApiVersions responses cap Fetch at v15
	// (protocol.FetchNoNodeEndpoints), below which Apache Kafka writes no
	// NodeEndpoints, and a Fetch response of 128 KiB or more goes from the
	// broker's socket to the client's unread (splice) where both sides are
	// plain TCP: about half the proxy's CPU per GB fetched
	// (docs/BENCHMARKS.md). Smaller ones are read, and decoded and
	// rewritten all the same. What clients lose is the address in KIP-951's
	// hint: when a leader moves they still get its id (CurrentLeader) and
	// refresh metadata to learn where it is, one round trip later. v17 and
	// v18 add only broker-to-broker fields. A client that ignores
	// ApiVersions and sends v16+ anyway has its responses decoded.
	//
	// Set it for brokers that write NodeEndpoints below Fetch v16 against
	// the protocol, as those built on franz-go's kmsg do (kfake): with the
	// default, the addresses in a large response from such a broker would
	// reach the client.
	FetchNodeEndpoints bool
}

// EnsureDefaults fills in zero fields with their defaults. It returns o so
// that calls chain.
func (o *Options) EnsureDefaults() *Options {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err == nil {
		if o.AdvertiseHost == "" {
			o.AdvertiseHost = host
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				o.AdvertiseHost, _ = os.Hostname()
			}
		}
		if port, err := strconv.Atoi(portStr); err == nil && port > 0 && o.BrokerPortBase == 0 {
			o.BrokerPortBase = port + 1
		}
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.BufferBytes == 0 {
		o.BufferBytes = DefaultBufferBytes
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
		o.Dial = d.DialContext
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	return o
}

// Validate reports every problem with o at once, joined.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Upstreams) == 0 {
		errs = append(errs, errors.New("no upstream: give at least one broker address with --upstream HOST:PORT"))
	}
	for _, u := range o.Upstreams {
		if _, _, err := net.SplitHostPort(u); err != nil {
			errs = append(errs, fmt.Errorf("upstream %q: want HOST:PORT: %w", u, err))
		}
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: want HOST:PORT: %w", o.Listen, err))
	}
	if o.AdvertiseHost == "" {
		errs = append(errs, errors.New("no advertise host: set --advertise-host"))
	}
	if o.BrokerPortBase < 0 || o.BrokerPortBase > 65535 {
		errs = append(errs, fmt.Errorf("broker port base %d out of range", o.BrokerPortBase))
	}
	if o.MaxFrameBytes < protocol.MinRequestLen {
		errs = append(errs, fmt.Errorf("max frame bytes %d below the smallest request (%d)", o.MaxFrameBytes, protocol.MinRequestLen))
	}
	if o.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in flight %d: want at least 1", o.MaxInFlight))
	}
	if o.BufferBytes < 4096 {
		errs = append(errs, fmt.Errorf("buffer bytes %d: want at least 4096", o.BufferBytes))
	}
	if o.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dial timeout %s is negative", o.DialTimeout))
	}
	return errors.Join(errs...)
}
