package runner

import (
	"bytes"
	"testing"
)

// TestRandomBytes: the same bytes every call, a shorter result a prefix
// of a longer one, and not a run of one byte.
func TestRandomBytes(t *testing.T) {
	a, b := RandomBytes(1024), RandomBytes(4096)
	if len(a) != 1024 || !bytes.Equal(a, RandomBytes(1024)) || !bytes.HasPrefix(b, a) {
		t.Fatal("RandomBytes differs between calls")
	}
	if bytes.Count(a, a[:1]) > 64 {
		t.Errorf("RandomBytes(1024) holds %d copies of its first byte", bytes.Count(a, a[:1]))
	}
}
