package completeness

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestMeasureSmall runs the whole benchmark on a tiny log: every
// measurement runs, verify and verify --against find the archive equal to
// the cluster (Measure fails otherwise), and the table names them all.
func TestMeasureSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, memory := range []bool{true, false} {
		rep, err := Measure(ctx, Options{Rounds: 2, ShapeBytes: 512 << 10, Memory: memory, Dir: t.TempDir(),
			Shapes: []Shape{{BatchBytes: 64 << 10, Codec: "none"}, {BatchBytes: 16 << 10, Codec: "lz4"}}})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := rep.WriteTable(&out); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"64k/none", "16k/lz4", "backfill/consume", "verify --against"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, out.String())
			}
		}
		for _, s := range rep.Shapes {
			if s.Records != 512 || s.LogBytes < 256<<10 || len(s.Runs[MeasureBackfill]) != 2 || s.Ratio <= 0 {
				t.Errorf("shape %s: %+v", s.Shape, s)
			}
		}
	}
}
