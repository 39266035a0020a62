package proxy_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/amber-kafka/amber/internal/kafkatest"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
	"github.com/amber-kafka/amber/proxy"
)

// TestShutdownDrains: a request in flight when Shutdown starts still gets
// its response; then the connection closes and no new one is accepted.
func TestShutdownDrains(t *testing.T) {
	c := testkit.NewCluster(t)
	p, err := proxy.New(proxy.Options{Upstreams: c.ListenAddrs(), Listen: "127.0.0.1:0", Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	entered := make(chan struct{})
	c.ControlKey(int16(kmsg.ListGroups), func(kmsg.Request) (kmsg.Response, error, bool) {
		close(entered)
		time.Sleep(300 * time.Millisecond) // the broker is slow to answer
		return nil, nil, false
	})
	conn, err := kafkatest.DialRaw(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := kmsg.NewPtrListGroupsRequest()
	req.SetVersion(4)
	if _, err := conn.WriteRequest(req); err != nil {
		t.Fatal(err)
	}
	<-entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	frame, err := conn.ReadFrame()
	if err != nil {
		t.Fatalf("in-flight request lost in shutdown: %v", err)
	}
	if corr := protocol.CorrelationID(frame); corr != 1 {
		t.Fatalf("correlation id %d", corr)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := conn.ReadFrame(); err == nil {
		t.Fatal("connection still open after shutdown")
	}
	if c2, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c2.Close()
		t.Fatal("proxy still accepts connections after shutdown")
	}
}

// TestRestartKeepsBrokerPorts: a proxy restarted with the same state
// directory listens on the same per-broker ports before any client asks
// for metadata, so connected clients simply reconnect.
func TestRestartKeepsBrokerPorts(t *testing.T) {
	c := testkit.NewCluster(t)
	dir := t.TempDir()
	start := func() *proxy.Proxy {
		p, err := proxy.New(proxy.Options{Upstreams: c.ListenAddrs(), Listen: "127.0.0.1:0", StateDir: dir, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := start()
	conn, err := kafkatest.DialRaw(p1.Addr())
	if err != nil {
		t.Fatal(err)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(9)
	if _, err := conn.Request(meta); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	first := p1.Brokers()
	if len(first) != 3 {
		t.Fatalf("brokers after metadata: %v", first)
	}
	if err := p1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	p2 := start()
	defer p2.Close()
	second := p2.Brokers()
	if len(second) != len(first) {
		t.Fatalf("after restart: %v, before: %v", second, first)
	}
	for i := range first {
		if first[i].Upstream != second[i].Upstream || first[i].Advertised != second[i].Advertised {
			t.Errorf("broker %s moved from %s to %s", first[i].Upstream, first[i].Advertised, second[i].Advertised)
		}
	}
	// And the restored listener forwards.
	bc, err := kafkatest.DialRaw(second[0].Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if _, err := bc.Request(meta); err != nil {
		t.Fatalf("restored broker listener: %v", err)
	}
}
