package proxy_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// futureBroker stands in front of one kfake broker and plays a broker from
// a later Kafka release: it answers API key futureKey itself (echoing the
// request body) and relays everything else to kfake, one request at a
// time, so per-connection order holds. With corruptCorr it also answers
// with a wrong correlation id, as an out-of-sync broker would.
type futureBroker struct {
	ln          net.Listener
	upstream    string
	corruptCorr bool
	// saslV0 makes it also play a broker from before KIP-152: it accepts
	// SaslHandshake v0, after which the client sends one bare SASL PLAIN
	// token (no Kafka header) and gets one bare, empty frame back.
	saslV0 bool
	wg     sync.WaitGroup
}

const futureKey = 30000

func startFutureBroker(t *testing.T, upstream string, corrupt bool) *futureBroker {
	return startFutureBrokerWith(t, &futureBroker{upstream: upstream, corruptCorr: corrupt})
}

func startFutureBrokerWith(t *testing.T, fb *futureBroker) *futureBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb.ln = ln
	fb.wg.Add(1)
	go func() {
		defer fb.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fb.wg.Add(1)
			go func() { defer fb.wg.Done(); fb.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); fb.wg.Wait() })
	return fb
}

func (fb *futureBroker) Addr() string { return fb.ln.Addr().String() }

func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

func writeFrame(w io.Writer, b []byte) error {
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(b)))
	_, err := w.Write(append(size[:], b...))
	return err
}

func (fb *futureBroker) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", fb.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	for {
		req, err := readFrame(c)
		if err != nil {
			return
		}
		key := int16(binary.BigEndian.Uint16(req))
		if fb.saslV0 && key == 17 && binary.BigEndian.Uint16(req[2:]) == 0 {
			// SaslHandshake v0 response: corr, error 0, [PLAIN].
			resp := append([]byte{}, req[4:8]...)
			resp = append(resp, 0, 0, 0, 0, 0, 1, 0, 5, 'P', 'L', 'A', 'I', 'N')
			if writeFrame(c, resp) != nil {
				return
			}
			token, err := readFrame(c)
			if err != nil || string(token) != "\x00user\x00pass" {
				return // wrong token: close, as a broker does
			}
			if writeFrame(c, nil) != nil {
				return
			}
			continue
		}
		if key == futureKey {
			// Response: correlation id, then the request's body after
			// the 8-byte fixed header and a null client id.
			resp := append([]byte{}, req[4:8]...)
			resp = append(resp, req[10:]...)
			if fb.corruptCorr {
				resp[3]++
			}
			if writeFrame(c, resp) != nil {
				return
			}
			continue
		}
		if writeFrame(up, req) != nil {
			return
		}
		// Tests never send acks=0 produce through here: every relayed
		// request has a response.
		resp, err := readFrame(up)
		if err != nil {
			return
		}
		if writeFrame(c, resp) != nil {
			return
		}
	}
}

func apiVersionsReq() kmsg.Request {
	r := kmsg.NewPtrApiVersionsRequest()
	r.SetVersion(3)
	r.ClientSoftwareName = "amber-test"
	r.ClientSoftwareVersion = "1"
	return r
}
