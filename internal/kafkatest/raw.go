package kafkatest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/protocol"
)

// RawConn speaks the Kafka protocol over one TCP connection at exactly the
// versions it is told, with none of a client library's negotiation, so a
// test can send any key at any version.
type RawConn struct {
	net.Conn
	corr int32
}

// DialRaw connects to addr.
func DialRaw(addr string) (*RawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &RawConn{Conn: c}, nil
}

// WriteRequest sends req (at its set version) and returns its correlation id.
func (c *RawConn) WriteRequest(req kmsg.Request) (int32, error) {
	c.corr++
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("kafkatest"))
	_, err := c.Write(f.AppendRequest(nil, req, c.corr))
	return c.corr, err
}

// ReadFrame reads one size-prefixed frame and returns what follows the size.
func (c *RawConn) ReadFrame() ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("response of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

// Request sends req and decodes its response.
func (c *RawConn) Request(req kmsg.Request) (kmsg.Response, error) {
	corr, err := c.WriteRequest(req)
	if err != nil {
		return nil, err
	}
	frame, err := c.ReadFrame()
	if err != nil {
		return nil, err
	}
	if got := protocol.CorrelationID(frame); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	hlen, err := protocol.ResponseHeaderLen(req.Key(), req.GetVersion(), frame)
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(frame[hlen:]); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}
