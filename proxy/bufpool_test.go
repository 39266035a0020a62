package proxy

import "testing"

func TestBufPoolClasses(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, 0}, {1, 0}, {512, 0}, {513, 1}, {1024, 1}, {1025, 2},
		{1 << 20, 11}, {1<<20 + 1, 12}, {100 << 20, 18}, {1 << 31, 22},
	} {
		if got := bufClass(tc.n); got != tc.class {
			t.Errorf("bufClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
	var p bufPool
	for _, n := range []int{0, 1, 511, 512, 513, 4095, 4096, 1<<20 + 7} {
		b := p.get(n)
		if len(*b) != n {
			t.Errorf("get(%d): len %d", n, len(*b))
		}
		if c := cap(*b); c&(c-1) != 0 || c < n || c < 1<<minBufShift || (n > 1<<minBufShift && c >= 2*n) {
			t.Errorf("get(%d): cap %d, want the next power of two ≥ %d", n, c, max(n, 1<<minBufShift))
		}
		p.put(b)
	}
}

// TestBufPoolReuses checks that a released buffer comes back for a frame
// of the same class, and that put ignores buffers get did not make. (A
// sync.Pool may drop anything at a GC, so reuse is checked over a few
// tries.)
func TestBufPoolReuses(t *testing.T) {
	var p bufPool
	reused := false
	for range 10 {
		b := p.get(3000)
		(*b)[0] = 42
		p.put(b)
		if c := p.get(2500); &(*c)[:1][0] == &(*b)[:1][0] {
			reused = true
			p.put(c)
			break
		}
	}
	if !reused {
		t.Error("a released 4 KiB-class buffer never came back for a frame of the same class")
	}
	odd := make([]byte, 1000)
	p.put(&odd) // not a power of two: dropped
	p.put(nil)
	if b := p.get(1000); cap(*b) != 1024 {
		t.Errorf("get(1000) after put of a foreign buffer: cap %d, want 1024", cap(*b))
	}
}
