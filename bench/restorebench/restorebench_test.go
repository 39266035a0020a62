package restorebench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRunSmoke runs every mode on two small shapes, once: every run's
// writes are checked by Run itself (end offsets, the restore's report),
// and the report carries a result for every mode and both ratios.
func TestRunSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Run(ctx, Options{Rounds: 1, Partitions: 4, ShapeBytes: 2 << 20, Progress: &progress,
		Shapes: []Shape{{BatchBytes: 16 << 10, Codec: "none"}, {BatchBytes: 256 << 10, Codec: "lz4"}}})
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	if len(rep.Shapes) != 2 {
		t.Fatalf("%d shapes in the report, want 2", len(rep.Shapes))
	}
	for _, s := range rep.Shapes {
		if s.Records != 2048 || s.Batches == 0 || s.WireBytes == 0 || s.ArchiveBytes == 0 {
			t.Errorf("%s: workload %+v", s.Shape, s)
		}
		if len(s.Modes) != len(Modes) {
			t.Fatalf("%s: %d modes, want %d", s.Shape, len(s.Modes), len(Modes))
		}
		for _, m := range s.Modes {
			if len(m.Runs) != 1 || !(m.MBPerSec > 0) || !(m.CPUPerGB >= 0) {
				t.Errorf("%s %s: %+v", s.Shape, m.Mode, m)
			}
		}
		if !(s.Ratio > 0) || !(s.BlackholeRatio > 0) || s.Pass == nil {
			t.Errorf("%s: ratio %v, blackhole ratio %v, pass %v", s.Shape, s.Ratio, s.BlackholeRatio, s.Pass)
		}
	}
	if len(rep.Notes) > 0 {
		t.Errorf("notes: %q", rep.Notes)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"restore/produce", "16k/none", "256k/lz4", ModeRestoreBlackhole} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Shapes) != 2 {
		t.Errorf("JSON round trip: %v, %d shapes", err, len(back.Shapes))
	}
}

// TestWorkloadBatches: batches hold as many records as fit the shape's
// size, never more, and every record lands in the archive once.
func TestWorkloadBatches(t *testing.T) {
	o := Options{Partitions: 3, ShapeBytes: 1 << 20}
	o.EnsureDefaults()
	w, err := NewWorkload(context.Background(), Shape{BatchBytes: 16 << 10, Codec: "none"}, o)
	if err != nil {
		t.Fatal(err)
	}
	var records, batches int64
	for _, c := range w.Archive.Coverage() {
		records += c.Records
		batches += c.Batches
	}
	if records != w.Records || batches != w.Batches {
		t.Fatalf("archive holds %d records in %d batches, the workload %d in %d", records, batches, w.Records, w.Batches)
	}
	if per := w.WireBytes / w.Batches; per > 16<<10 || per < 12<<10 {
		t.Errorf("%d bytes per batch, want close to 16 KiB", per)
	}
}

// TestValidateShapes checks that Validate names every bad shape and mode.
func TestValidateShapes(t *testing.T) {
	o := Options{Shapes: []Shape{{BatchBytes: 16 << 10, Codec: "brotli"}, {BatchBytes: 4 << 20, Codec: "none"}}, Modes: []string{"teleport"}}
	if err := o.EnsureDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "brotli") || !strings.Contains(err.Error(), "teleport") || !strings.Contains(err.Error(), "4m/none") {
		t.Errorf("Validate: %v", err)
	}
}
