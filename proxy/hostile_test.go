package proxy_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/kafkatest"
	"github.com/amber-kafka/amber/internal/testkit"
)

// TestHostileTagCount sends a Produce request whose tagged-field count is
// 2^32-1 in a 20-byte body. Decoding must fail at once and the connection
// close; unpatched kmsg spins for over a minute per such request (see
// third_party/kmsg/AMBER-PATCH.md), so a 10 s deadline separates the two.
func TestHostileTagCount(t *testing.T) {
	pc := testkit.ProxiedCluster(t)
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	frame := frameOf(req, 1)
	// The body ends with the top-level tag count (0): make it 2^32-1.
	frame = append(frame[:len(frame)-1], 0xff, 0xff, 0xff, 0xff, 0x0f)
	frame = sized(frame[4:])
	conn, err := kafkatest.DialRaw(pc.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 8))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %v: want the connection closed at once", err)
	}
}
