package proxy

import (
	"math/bits"
	"sync"
)

// bufPool recycles frame buffers in power-of-two size classes, one
// sync.Pool per class (as nats-server does for its outbound buffers). A
// frame of n bytes gets a buffer from the class of the next power of two at
// or above n, so a pooled buffer is never too small and never more than
// twice the frame.
//
// Why: a fresh make([]byte, size) per frame was 20–30 % of the proxy's CPU
// (zeroing, page faults after the scavenger returned the pages, GC assist),
// because every produce request and fetch response is a megabyte or so.
//
// Ownership: get hands out a buffer nothing else references. put must be
// called only once nothing aliases the buffer any more: a kmsg
// UnsafeReadFrom decode, a decoded request kept in an in-flight entry, a
// writer that has not yet written it. Buffers are not zeroed; every caller
// fills the whole frame before reading it.
type bufPool struct {
	classes [maxBufShift - minBufShift + 1]sync.Pool // of *[]byte
}

const (
	// minBufShift is the smallest class, 512 B: smaller frames share it.
	minBufShift = 9
	// maxBufShift is the largest class, 2 GiB: every int32 frame size
	// fits. Sizes are checked against MaxFrameBytes before get.
	maxBufShift = 31
)

// frames is the pool every connection's frame buffers come from.
var frames bufPool

// get returns a buffer of length n, n ≤ 1<<maxBufShift.
func (p *bufPool) get(n int) *[]byte {
	c := bufClass(n)
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(c+minBufShift))
	return &b
}

// put returns b to its class. A nil b, or one get did not make, is ignored.
func (p *bufPool) put(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	if c < 1<<minBufShift || c > 1<<maxBufShift || c&(c-1) != 0 {
		return
	}
	p.classes[bits.Len(uint(c))-1-minBufShift].Put(b)
}

// bufClass is the index of the smallest class holding n bytes.
func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufShift
}
