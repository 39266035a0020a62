package proxy_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/kafkatest"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
	"github.com/amber-kafka/amber/proxy"
)

// rawRequest builds a request frame (without size) for a key kmsg may not
// know: header v1 with a null client id, then body.
func rawRequest(key, version int16, corr int32, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	return append(b, body...)
}

// frameOf encodes req as a size-prefixed frame. (kmsg's AppendRequest
// writes the size at the start of dst, so each frame starts from nil.)
func frameOf(req kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter().AppendRequest(nil, req, corr)
}

// sized prefixes b with its size.
func sized(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// TestUnknownAPIKeyPassesThrough pipelines a request with an API key no
// Kafka release has (yet) between two known requests: the broker that knows
// it answers, and the proxy forwards request and response untouched and in
// order.
func TestUnknownAPIKeyPassesThrough(t *testing.T) {
	c := testkit.NewCluster(t)
	fb := startFutureBroker(t, c.ListenAddrs()[0], false)
	p := testkit.StartProxy(t, proxy.Options{Upstreams: []string{fb.Addr()}})
	conn, err := kafkatest.DialRaw(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	payload := []byte("a request from the future")
	out := frameOf(meta, 1)
	out = append(out, sized(rawRequest(futureKey, 7, 2, payload))...)
	out = append(out, frameOf(meta, 3)...)
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	for corr := int32(1); corr <= 3; corr++ {
		frame, err := conn.ReadFrame()
		if err != nil {
			t.Fatalf("response %d: %v", corr, err)
		}
		if got := protocol.CorrelationID(frame); got != corr {
			t.Fatalf("response %d has correlation id %d: order lost", corr, got)
		}
		if corr == 2 && !bytes.Equal(frame[4:], payload) {
			t.Fatalf("unknown key's response body = %q, want %q", frame[4:], payload)
		}
	}
}

// TestPipelinedOrderAndAcksZero pipelines produce requests with acks=0
// (which get no response) between requests that do: every response comes
// back in order, and none is invented for acks=0.
func TestPipelinedOrderAndAcksZero(t *testing.T) {
	pc := testkit.ProxiedCluster(t, kfake.SeedTopics(1, "t"))
	// Find the partition leader's proxy address: produce must reach it.
	boot, err := kafkatest.DialRaw(pc.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	mreq.Topics = append(mreq.Topics, mt)
	r, err := boot.Request(mreq)
	if err != nil {
		t.Fatal(err)
	}
	meta := r.(*kmsg.MetadataResponse)
	leader := meta.Topics[0].Partitions[0].Leader
	var addr string
	for _, b := range meta.Brokers {
		if b.NodeID == leader {
			addr = kafkatest.Addr{Host: b.Host, Port: b.Port}.String()
		}
	}
	conn, err := kafkatest.DialRaw(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	produce := func(acks int16) kmsg.Request {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks = acks
		req.TimeoutMillis = 5000
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = "t"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = testkit.RecordBatch([]byte("k"), []byte("v"))
		tp.Partitions = append(tp.Partitions, pp)
		req.Topics = append(req.Topics, tp)
		return req
	}
	var out []byte
	acks := []int16{0, 1, 0, 0, -1, 0}
	for i, a := range acks {
		out = append(out, frameOf(produce(a), int32(i+1))...)
	}
	out = append(out, frameOf(mreq, 100)...)
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	var want []int32
	for i, a := range acks {
		if a != 0 {
			want = append(want, int32(i+1))
		}
	}
	want = append(want, 100)
	for _, w := range want {
		frame, err := conn.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for response %d: %v", w, err)
		}
		if got := protocol.CorrelationID(frame); got != w {
			t.Fatalf("got response %d, want %d", got, w)
		}
	}
	// All six batches reached the broker: acks=0 ones included.
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(7)
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "t"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	lr, err := conn.Request(lo)
	if err != nil {
		t.Fatal(err)
	}
	if end := lr.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset; end != int64(len(acks)) {
		t.Fatalf("end offset %d, want %d", end, len(acks))
	}
}

// TestCorrelationMismatchClosesConnection: a broker that answers with the
// wrong correlation id gets its client connection closed, with a log line.
func TestCorrelationMismatchClosesConnection(t *testing.T) {
	c := testkit.NewCluster(t)
	fb := startFutureBroker(t, c.ListenAddrs()[0], true)
	logs := testkit.ObservedLogger(t)
	p := testkit.StartProxy(t, proxy.Options{Upstreams: []string{fb.Addr()}, Logger: logs.Logger})
	conn, err := kafkatest.DialRaw(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(sized(rawRequest(futureKey, 0, 5, []byte("x")))); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ReadFrame(); err == nil {
		t.Fatal("a response with the wrong correlation id reached the client")
	}
	logs.WaitFor(t, "correlation id mismatch")
}

// TestPipelinePastMaxInFlight: a client that pipelines many more small
// requests than MaxInFlight in one write gets every response. The proxy
// must send what it has buffered upstream before it waits for a free
// in-flight slot, since only those requests' responses can free one.
func TestPipelinePastMaxInFlight(t *testing.T) {
	c := testkit.NewCluster(t)
	p := testkit.StartProxy(t, proxy.Options{Upstreams: c.ListenAddrs(), MaxInFlight: 4})
	conn, err := kafkatest.DialRaw(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	const n = 100
	var out []byte
	for corr := int32(1); corr <= n; corr++ {
		out = append(out, frameOf(meta, corr)...)
	}
	go conn.Write(out)
	for want := int32(1); want <= n; want++ {
		frame, err := conn.ReadFrame()
		if err != nil {
			t.Fatalf("response %d of %d: %v", want, n, err)
		}
		if got := protocol.CorrelationID(frame); got != want {
			t.Fatalf("got response %d, want %d", got, want)
		}
	}
}

// TestBrokerGoneWhileInFlightFull: a client past MaxInFlight waits for a
// free slot; if the broker goes away instead of answering, the connection
// must still close and the proxy must still shut down.
func TestBrokerGoneWhileInFlightFull(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // reads two requests, answers none, hangs up
		c, err := ln.Accept()
		if err != nil {
			return
		}
		readFrame(c)
		readFrame(c)
		c.Close()
	}()
	p, err := proxy.New(proxy.Options{Upstreams: []string{ln.Addr().String()}, Listen: "127.0.0.1:0", MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := kafkatest.DialRaw(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out []byte
	for corr := int32(1); corr <= 10; corr++ {
		out = append(out, sized(rawRequest(futureKey, 0, corr, nil))...)
	}
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ReadFrame(); err == nil {
		t.Fatal("a response came from a broker that sends none")
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: the client goroutine is stuck waiting for an in-flight slot")
	}
}
