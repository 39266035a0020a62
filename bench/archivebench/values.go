package archivebench

import (
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"

	"github.com/amber-kafka/amber/bench/runner"
)

// valuePoolBytes is the size of the pools record values are cut from.
// Values are consecutive slices of a pool, so no two records within
// 64 MiB of each other are the same: neither Pebble's Snappy (64 KiB
// window) nor the archive's zstd (at most 8 MiB) can find a repeat that a
// real workload would not have.
const valuePoolBytes = 64 << 20

// Payloads of the upload scenario.
const (
	// PayloadIncompressible is random bytes.
	PayloadIncompressible = "incompressible"
	// PayloadCompressible is JSON log lines with random fields: zstd
	// takes it to roughly a quarter (the table reports the measured
	// ratio).
	PayloadCompressible = "compressible"
)

var (
	randomPoolOnce sync.Once
	randomPool     []byte

	textPoolMu sync.Mutex
	textPool   []byte
)

// values hands out record values of one size, cut in turn from a pool.
type values struct {
	pool []byte
	size int
	next atomic.Int64
}

// newValues returns values of size bytes of payload. Pools are built once
// per process (the text pool at least as large as need, up to
// valuePoolBytes).
func newValues(payload string, size int, need int64) *values {
	var pool []byte
	switch payload {
	case PayloadCompressible:
		want := int(min(max(need, 1<<20), valuePoolBytes))
		textPoolMu.Lock()
		if len(textPool) < want {
			textPool = textLines(want)
		}
		pool = textPool
		textPoolMu.Unlock()
	default:
		randomPoolOnce.Do(func() {
			randomPool = runner.RandomBytes(valuePoolBytes)
		})
		pool = randomPool
	}
	return &values{pool: pool, size: size}
}

// get returns the next value. Values alias the pool: nothing may write
// to them.
func (v *values) get() []byte {
	slots := int64(len(v.pool) / v.size)
	i := (v.next.Add(1) - 1) % slots
	off := i * int64(v.size)
	return v.pool[off : off+int64(v.size) : off+int64(v.size)]
}

var (
	levels   = []string{"debug", "info", "info", "info", "warn", "error"}
	services = []string{"checkout", "cart", "search", "payments", "inventory", "auth", "shipping", "catalog"}
	paths    = []string{"orders", "users", "items", "carts", "sessions", "payments", "invoices", "products"}
	words    = []string{"request", "completed", "started", "failed", "retrying", "cache", "miss", "hit", "user",
		"order", "payment", "declined", "accepted", "timeout", "upstream", "connection", "reset", "queue",
		"enqueued", "processed", "inventory", "reserved", "released", "session", "expired", "renewed",
		"token", "refreshed", "invalid", "shipment", "created", "dispatched", "delivered", "price",
		"updated", "discount", "applied", "rejected", "search", "results", "returned", "empty"}
)

// textLines is n bytes of newline-separated JSON log lines whose fields
// are random: timestamps, ids, paths, status codes, a few words of
// message. Roughly what an application's log topic carries.
func textLines(n int) []byte {
	r := rand.New(rand.NewSource(2))
	pick := func(s []string) string { return s[r.Intn(len(s))] }
	b := make([]byte, 0, n+512)
	for len(b) < n {
		b = fmt.Appendf(b, `{"ts":"2026-11-21T%02d:%02d:%02d.%06dZ","level":"%s","service":"%s","host":"ip-10-0-%d-%d",`+
			`"trace_id":"%016x","user_id":%d,"path":"/api/v1/%s/%d","status":%d,"latency_ms":%d,"bytes":%d,"msg":"%s %s %s %s"}`+"\n",
			r.Intn(24), r.Intn(60), r.Intn(60), r.Intn(1e6), pick(levels), pick(services), r.Intn(256), r.Intn(256),
			r.Uint64(), r.Intn(1e7), pick(paths), r.Intn(1e6), []int{200, 200, 200, 201, 204, 400, 404, 500}[r.Intn(8)],
			r.Intn(2000), r.Intn(1e5), pick(words), pick(words), pick(words), pick(words))
	}
	return b[:n]
}
