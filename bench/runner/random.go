package runner

import "math/rand"

// RandomBytes is n random bytes, the same for the same n on every call
// and in every process (math/rand seeded with 1; a shorter result is a
// prefix of a longer one), so that record values or batches built from it
// give no codec or compressing store anything to gain, and runs are
// comparable.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(1)).Read(b)
	return b
}
