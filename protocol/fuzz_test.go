package protocol_test

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/kafkatest"
	"github.com/amber-kafka/amber/protocol"
)

// FuzzFrameAndHeader feeds arbitrary bytes to the decoding a connection
// does before forwarding: the size check, the request header and the
// response header.
//
// Invariants: nothing panics; a size passes CheckSize only within
// [min, max]; a request header that parses as known has its body offset
// within the frame; a response header length is within the frame.
func FuzzFrameAndHeader(f *testing.F) {
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	f.Add(kmsg.NewRequestFormatter(kmsg.FormatterClientID("c")).AppendRequest(nil, meta, 7))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01})
	f.Add([]byte{0, 0, 0, 10, 0, 3, 0, 12, 0, 0, 0, 1, 0, 0x7f})
	f.Add([]byte{0, 0, 0, 12, 0x75, 0x30, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < protocol.SizeLen {
			return
		}
		var prefix [protocol.SizeLen]byte
		copy(prefix[:], b)
		const max = 1 << 20
		for _, min := range []int32{protocol.MinRequestLen, protocol.MinResponseLen} {
			size, err := protocol.CheckSize(prefix, min, max, protocol.FromClient)
			if (err == nil) != (size >= min && size <= max) {
				t.Fatalf("CheckSize(%d) err=%v", size, err)
			}
		}
		frame := b[protocol.SizeLen:]
		h, err := protocol.ParseRequestHeader(frame)
		if err == nil && h.Known && (h.BodyOffset < protocol.MinRequestLen || h.BodyOffset > len(frame)) {
			t.Fatalf("body offset %d outside frame of %d", h.BodyOffset, len(frame))
		}
		if len(frame) >= 2 {
			key := int16(binary.BigEndian.Uint16(frame))
			for v := int16(0); v < 20; v++ {
				if n, err := protocol.ResponseHeaderLen(key, v, frame); err == nil && (n < protocol.MinResponseLen || n > len(frame)) {
					t.Fatalf("response header length %d outside frame of %d", n, len(frame))
				}
			}
		}
	})
}

type toProxy struct{}

func (toProxy) MapAddr(node int32, host string, port int32) (string, int32, error) {
	return "proxy.invalid", 1, nil
}

// FuzzRewriteAddresses decodes arbitrary bytes as an address-bearing
// response, rewrites it and encodes it again.
//
// Invariants: nothing panics; whatever decodes, re-encodes into bytes that
// decode again with every address the proxy's.
func FuzzRewriteAddresses(f *testing.F) {
	real := []kafkatest.Addr{{Host: "broker", Port: 9092}, {Host: "broker2", Port: 9093}}
	for _, key := range protocol.AddressKeys() {
		v := protocol.MaxVersion(key)
		resp := kmsg.ResponseForKey(key)
		resp.SetVersion(v)
		kafkatest.Fill(resp, real, 0)
		f.Add(key, v, resp.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		if !protocol.AddressKey(key) || !protocol.Known(key, version) {
			return
		}
		resp := kmsg.ResponseForKey(key)
		resp.SetVersion(version)
		if err := resp.ReadFrom(body); err != nil {
			return
		}
		if _, err := protocol.RewriteAddresses(resp, toProxy{}); err != nil {
			t.Fatal(err)
		}
		again := kmsg.ResponseForKey(key)
		again.SetVersion(version)
		if err := again.ReadFrom(resp.AppendTo(nil)); err != nil {
			t.Fatalf("re-encoded response does not decode: %v", err)
		}
		for _, a := range kafkatest.Collect(again) {
			if a.Host != "proxy.invalid" {
				t.Fatalf("address %s survived the rewrite", a)
			}
		}
	})
}
