package proxy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/proxy"
)

// TestBadInputClosesOnlyThatConnection sends the proxy what a Kafka port
// meets in the wild. Each such connection is closed with a log line naming
// the likely cause, and a client already connected keeps working.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "t"))
	logs := testkit.ObservedLogger(t)
	p := testkit.StartProxy(t, proxy.Options{Upstreams: c.ListenAddrs(), Logger: logs.Logger, MaxFrameBytes: 1 << 20})

	good, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	produce := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := good.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("the good client stopped working: %v", err)
		}
	}
	produce()

	tlsHello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	huge := binary.BigEndian.AppendUint32(nil, 2<<20)
	cases := []struct {
		name, send, log string
	}{
		{"tls client hello", string(tlsHello), "TLS ClientHello"},
		{"http request", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP request"},
		{"frame over the limit", string(huge) + "xxxx", "raise --max-frame-bytes"},
		{"negative size", "\xff\xff\xff\xf0abcdefgh", "frame too small"},
		{"tiny frame", "\x00\x00\x00\x02ab", "frame too small"},
		{"truncated request", "\x00\x00\x00\x20\x00\x03\x00\x0c", "request truncated"},
		{"garbage header", "\x00\x00\x00\x0a\x00\x03\x00\x0c\x00\x00\x00\x01\x00\x7f", "request header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			if tc.name == "truncated request" {
				conn.(*net.TCPConn).CloseWrite()
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := conn.Read(make([]byte, 64))
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read = %d, %v: want the connection closed", n, err)
			}
			logs.WaitFor(t, tc.log)
			produce()
		})
	}
}

// TestUpstreamVanishes: when the cluster goes away, connected clients are
// disconnected with a log line, and a new client gets a clear error.
func TestUpstreamVanishes(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	logs := testkit.ObservedLogger(t)
	p := testkit.StartProxy(t, proxy.Options{Upstreams: c.ListenAddrs(), Logger: logs.Logger, DialTimeout: time.Second})
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	logs.WaitFor(t, "upstream broker closed the connection")

	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(frameOf(apiVersionsReq(), 1))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 8)); err == nil {
		t.Fatal("got a response with no cluster behind the proxy")
	}
	logs.WaitFor(t, "no upstream broker answered")
}
