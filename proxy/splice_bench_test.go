//go:build linux

package proxy

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"syscall"
	"testing"
	"time"
)

// BenchmarkForwardResponse forwards untouched responses of one size
// through a proxy, spliced and copied, and reports the CPU the whole
// process (client, broker and proxy) spends per MB: the numbers behind
// spliceMinBytes. Client and broker are the same in both modes; a CPU
// profile splits off the proxy's part:
//
//	go test ./proxy -run '^$' -bench ForwardResponse -count 5
//	go test ./proxy -run '^$' -bench 'ForwardResponse/size=1024K' -cpuprofile cpu.prof
func BenchmarkForwardResponse(b *testing.B) {
	for _, size := range []int{4 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20} {
		for _, mode := range []string{"copy", "splice"} {
			b.Run(fmt.Sprintf("size=%dK/%s", size>>10, mode), func(b *testing.B) {
				saved := spliceMinBytes
				defer func() { spliceMinBytes = saved }()
				spliceMinBytes = 0
				if mode == "copy" {
					spliceMinBytes = math.MaxInt
				}
				benchForward(b, size)
			})
		}
	}
}

func benchForward(b *testing.B, size int) {
	// The broker answers every request with a response of size bytes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		resp := make([]byte, 4+size)
		binary.BigEndian.PutUint32(resp, uint32(size))
		req := make([]byte, 4+8+2)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			copy(resp[4:8], req[8:12]) // correlation id
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}()
	p, err := New(Options{Upstreams: []string{ln.Addr().String()}, Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	// The client pipelines every request (of a key nobody decodes, so
	// the response is forwarded untouched); MaxInFlight bounds how many
	// the proxy takes at once.
	go func() {
		for i := range b.N {
			r := binary.BigEndian.AppendUint32(nil, 8+2)
			r = binary.BigEndian.AppendUint16(r, 30000)
			r = binary.BigEndian.AppendUint16(r, 0)
			r = binary.BigEndian.AppendUint32(r, uint32(i))
			r = binary.BigEndian.AppendUint16(r, 0xffff) // null client id
			if _, err := c.Write(r); err != nil {
				return
			}
		}
	}()
	b.SetBytes(int64(size))
	b.ResetTimer()
	cpu0 := cpuTime()
	buf := make([]byte, 4+size)
	for range b.N {
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/(float64(b.N)*float64(size)/1e6), "cpu-µs/MB")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
