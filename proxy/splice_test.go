package proxy_test

import (
	"bytes"
	"math/rand"
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/kafkatest"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
	"github.com/amber-kafka/amber/proxy"
)

// TestLargeResponsesForwardedExactly pipelines responses the proxy does
// not decode, from a few bytes to megabytes (spliced socket to socket above
// a threshold, copied below it), between Metadata requests it does decode:
// every response arrives whole, byte for byte, in order.
func TestLargeResponsesForwardedExactly(t *testing.T) {
	c := testkit.NewCluster(t)
	fb := startFutureBroker(t, c.ListenAddrs()[0], false)
	p := testkit.StartProxy(t, proxy.Options{Upstreams: []string{fb.Addr()}})
	conn, err := kafkatest.DialRaw(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	rng := rand.New(rand.NewSource(1))
	sizes := []int{1, 64<<10 - 9, 64<<10 + 1, 128<<10 - 5, 128<<10 - 4, 128<<10 - 3, 200<<10 + 3, 3 << 20, 10, 1 << 20}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	var (
		out      []byte
		payloads = map[int32][]byte{}
	)
	corr := int32(0)
	for _, n := range sizes {
		corr++
		payloads[corr] = make([]byte, n)
		rng.Read(payloads[corr])
		out = append(out, sized(rawRequest(futureKey, 0, corr, payloads[corr]))...)
		corr++
		out = append(out, frameOf(meta, corr)...)
	}
	go conn.Write(out) // the proxy reads while we read responses below
	for want := int32(1); want <= corr; want++ {
		frame, err := conn.ReadFrame()
		if err != nil {
			t.Fatalf("response %d: %v", want, err)
		}
		if got := protocol.CorrelationID(frame); got != want {
			t.Fatalf("got response %d, want %d: order lost", got, want)
		}
		if p, ok := payloads[want]; ok && !bytes.Equal(frame[4:], p) {
			t.Fatalf("response %d: %d bytes differ from the %d the broker sent", want, len(frame)-4, len(p))
		}
	}
}

// TestLargeResponseCorrelationMismatch: a large response with the wrong
// correlation id is caught before any of it reaches the client.
func TestLargeResponseCorrelationMismatch(t *testing.T) {
	c := testkit.NewCluster(t)
	fb := startFutureBroker(t, c.ListenAddrs()[0], true)
	logs := testkit.ObservedLogger(t)
	p := testkit.StartProxy(t, proxy.Options{Upstreams: []string{fb.Addr()}, Logger: logs.Logger})
	conn, err := kafkatest.DialRaw(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(sized(rawRequest(futureKey, 0, 5, make([]byte, 1<<20)))); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ReadFrame(); err == nil {
		t.Fatal("a response with the wrong correlation id reached the client")
	}
	logs.WaitFor(t, "correlation id mismatch")
}

// TestFetchCappedWithoutNodeEndpoints: by default the proxy keeps clients
// at Fetch v15, whose responses carry no broker address and so are never
// decoded; with FetchNodeEndpoints it passes kmsg's and the broker's range.
func TestFetchCappedWithoutNodeEndpoints(t *testing.T) {
	c := testkit.NewCluster(t)
	for _, tc := range []struct {
		nodeEndpoints bool
		want          int16
	}{
		{false, protocol.FetchNoNodeEndpoints},
		{true, min(protocol.MaxVersion(1), 18)}, // kfake serves Fetch up to v18
	} {
		p := testkit.StartProxy(t, proxy.Options{Upstreams: c.ListenAddrs(), FetchNodeEndpoints: tc.nodeEndpoints})
		conn, err := kafkatest.DialRaw(p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := conn.Request(apiVersionsReq())
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := int16(-1)
		for _, k := range resp.(*kmsg.ApiVersionsResponse).ApiKeys {
			if k.ApiKey == 1 {
				got = k.MaxVersion
			}
		}
		if got != tc.want {
			t.Errorf("FetchNodeEndpoints %v: the proxy advertises Fetch up to v%d, want v%d", tc.nodeEndpoints, got, tc.want)
		}
	}
}

// TestLargeFetchNodeEndpoints: a broker built on kmsg (kfake) writes
// NodeEndpoints in Fetch responses below v16. With FetchNodeEndpoints the
// proxy reads and rewrites every such response, however large; by default
// it rewrites those it reads (small ones) and splices large ones unread
// (Apache Kafka writes none there), which this test shows for the record.
func TestLargeFetchNodeEndpoints(t *testing.T) {
	for _, strict := range []bool{true, false} {
		pc := testkit.NewCluster(t)
		real := map[string]bool{}
		var addrs []kafkatest.Addr
		for _, a := range pc.ListenAddrs() {
			h, p, _ := net.SplitHostPort(a)
			port, _ := strconv.Atoi(p)
			addrs = append(addrs, kafkatest.Addr{Host: h, Port: int32(port)})
			real[a] = true
		}
		pc.ControlKey(1, func(req kmsg.Request) (kmsg.Response, error, bool) {
			pc.KeepControl()
			resp := req.ResponseKind().(*kmsg.FetchResponse)
			resp.SetVersion(req.GetVersion())
			tp := kmsg.NewFetchResponseTopic()
			tp.Topic = "t"
			pp := kmsg.NewFetchResponseTopicPartition()
			pp.RecordBatches = make([]byte, 512<<10) // large enough to splice
			tp.Partitions = append(tp.Partitions, pp)
			resp.Topics = append(resp.Topics, tp)
			for i, a := range addrs {
				resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{NodeID: int32(i), Host: a.Host, Port: a.Port})
			}
			return resp, nil, true
		})
		p := testkit.StartProxy(t, proxy.Options{Upstreams: pc.ListenAddrs(), FetchNodeEndpoints: strict})
		conn, err := kafkatest.DialRaw(p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(protocol.FetchNoNodeEndpoints)
		resp, err := conn.Request(req)
		if err != nil {
			t.Fatal(err)
		}
		leaked := 0
		for _, a := range kafkatest.Collect(resp) {
			if real[a.String()] {
				leaked++
			}
		}
		switch {
		case strict && leaked > 0:
			t.Errorf("FetchNodeEndpoints: %d real broker addresses reached the client in a large Fetch v15 response", leaked)
		case !strict && leaked == 0:
			t.Errorf("default: a large Fetch v15 response was rewritten, so it was not spliced")
		}
	}
}
