package proxy

import "time"

// Metrics receives what the proxy counts. Implementations must be safe for
// concurrent use and cheap: every method is called on the hot path. Only
// cmd/amber turns these into Prometheus collectors.
type Metrics interface {
	// ConnOpened and ConnClosed count client connections.
	ConnOpened()
	ConnClosed()
	// Request counts one request frame of bytes read from a client.
	Request(key int16, bytes int)
	// Response counts one response frame of bytes written to a client,
	// latency after its request was forwarded.
	Response(key int16, bytes int, latency time.Duration)
	// Error counts a request or connection that failed at the proxy, by
	// API key (-1 when no request was involved) and a short reason.
	Error(key int16, reason string)
}

// Error reasons passed to Metrics.Error.
const (
	ReasonUpstreamDial   = "upstream_dial"
	ReasonUpstreamClosed = "upstream_closed"
	ReasonBadFrame       = "bad_frame"
	ReasonCorrelation    = "correlation"
	ReasonRewrite        = "rewrite"
	ReasonTLS            = "tls"
)

type nopMetrics struct{}

func (nopMetrics) ConnOpened()                        {}
func (nopMetrics) ConnClosed()                        {}
func (nopMetrics) Request(int16, int)                 {}
func (nopMetrics) Response(int16, int, time.Duration) {}
func (nopMetrics) Error(int16, string)                {}
