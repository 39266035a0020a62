package archivebench

import (
	"bytes"
	"context"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/amber-kafka/amber/internal/testkit"
)

// tiny is a run small enough for go test: a few hundred milliseconds per
// scenario. Nothing here asserts a speed; the tests check that every
// number the harness reports is there and plausible.
func tiny(t *testing.T, scenarios ...string) Options {
	return Options{
		Scenarios:  scenarios,
		Rounds:     1,
		Duration:   150 * time.Millisecond,
		Warmup:     50 * time.Millisecond,
		Dir:        t.TempDir(),
		BatchSizes: []int{16 << 10},
		Appenders:  []int{3},
		PacedMBps:  5,
		// Two of the four configurations: both payloads, one encrypted.
		UploadConfigs: []UploadConfig{{PayloadIncompressible, false}, {PayloadCompressible, true}},
		UploadRounds:  1,
		UploadBytes:   2 << 20,
		FlushBytes:    512 << 10,
	}
}

// TestRun runs the journal, produce and paced scenarios once, briefly.
func TestRun(t *testing.T) {
	rep, err := Run(context.Background(), tiny(t, ScenarioJournal, ScenarioProduce, ScenarioPaced))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Journal) != 1 {
		t.Fatalf("%d journal results, want 1", len(rep.Journal))
	}
	j := rep.Journal[0]
	for name, r := range map[string]AppendRun{"journal": j.Journal, "raw": j.Raw} {
		if !(r.MBPerSec > 0) || !(r.SyncsPerSec > 0) || !(r.PerSync >= 1) || !(r.P99Micros >= r.P50Micros) || !(r.P50Micros > 0) {
			t.Errorf("%s: %+v: want positive rates, at least one append per fsync, p99 ≥ p50 > 0", name, r)
		}
	}
	if !(j.Ratio > 0) || math.IsInf(j.Ratio, 0) {
		t.Errorf("journal/raw ratio %g", j.Ratio)
	}
	for _, res := range []*TeeResult{rep.Produce, rep.Paced} {
		if res == nil || len(res.Variants) != len(TeeVariants) {
			t.Fatalf("tee results %+v: want one per variant", res)
		}
		for _, v := range res.Variants {
			m := v.Median
			if !(m.MBPerSec > 0) || !(m.CPUPerGB > 0) || len(v.Runs) != 1 {
				t.Errorf("%s: %+v", v.Variant, v)
			}
			if v.Variant == VariantOff {
				continue
			}
			if !(v.ThroughputRatio > 0) || !(v.CPURatio > 0) || !(m.JournalMBPerSec > 0) || !(m.CommitsPerSec > 0) {
				t.Errorf("%s: ratios %g %g, journal %g MB/s %g commits/s: want all above 0", v.Variant,
					v.ThroughputRatio, v.CPURatio, m.JournalMBPerSec, m.CommitsPerSec)
			}
			if m.Dropped != 0 {
				t.Errorf("%s: the tee dropped %d batches", v.Variant, m.Dropped)
			}
		}
	}
	for _, v := range rep.Paced.Variants {
		if !(v.Median.P99Micros >= v.Median.P50Micros) || !(v.Median.P50Micros > 0) {
			t.Errorf("paced %s: p50 %g p99 %g", v.Variant, v.Median.P50Micros, v.Median.P99Micros)
		}
	}
	if len(rep.Targets) != 7 {
		t.Errorf("%d targets and checks, want 7: %+v", len(rep.Targets), rep.Targets)
	}
	checkOutput(t, rep, "1. journal append", "2a. proxied produce", "2b. proxied produce paced", "targets")
}

// TestRunUpload runs the upload scenario once against a real MinIO.
func TestRunUpload(t *testing.T) {
	bin, ok := testkit.MinIOBinary()
	if !ok {
		testkit.MissingTool(t, "MinIO server not found in .tools/bin or PATH")
	}
	o := tiny(t, ScenarioUpload)
	o.MinIO = bin
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Upload) != 2 {
		t.Fatalf("%d upload results, want 2", len(rep.Upload))
	}
	stored := map[string]float64{}
	for _, u := range rep.Upload {
		if !(u.ObjectsPerGB > 0) || u.ObjectsPerGB != math.Round(u.ObjectsPerGB) && u.Runs[0].Objects%2 != 0 {
			t.Errorf("%s: %g objects/GB, %d objects: want segment and index pairs", u.Config, u.ObjectsPerGB, u.Runs[0].Objects)
		}
		if !(u.Ratio > 0) || !(u.RatioSingle > 0) {
			t.Errorf("%s: ratios %g %g", u.Config, u.Ratio, u.RatioSingle)
		}
		for _, v := range UploadVariants {
			if tr := u.Transfers[v]; !(tr.MBPerSec > 0) || !(tr.ValuesPerSec > 0) {
				t.Errorf("%s %s: %+v", u.Config, v, tr)
			}
		}
		stored[u.Config.Payload] = u.StoredPerProduced
	}
	// Stored bytes per byte produced: random values a little over 1
	// (framing, index); JSON log lines well under (zstd).
	if s := stored[PayloadIncompressible]; s < 1 || s > 1.2 {
		t.Errorf("incompressible: stored/produced %g, want 1 to 1.2", s)
	}
	if s := stored[PayloadCompressible]; s <= 0 || s > 0.6 {
		t.Errorf("compressible: stored/produced %g, want above 0 and at most 0.6", s)
	}
	checkOutput(t, rep, "3. upload to MinIO", "uploader/put")
}

func checkOutput(t *testing.T, rep *Report, want ...string) {
	t.Helper()
	var tab, js bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(tab.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, tab.String())
		}
	}
	if testing.Verbose() {
		t.Logf("\n%s", tab.String())
	}
}

// TestRawLog: every append lands in the file once, and concurrent
// appenders share fsyncs.
func TestRawLog(t *testing.T) {
	dir := t.TempDir()
	l, err := openRawLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 1000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				done, err := l.append(g, int64(i), data)
				if err == nil {
					err = <-done
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir + "/raw.log")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 8*50*1000 {
		t.Errorf("raw log holds %d bytes, want %d", st.Size(), 8*50*1000)
	}
	if n := l.syncs(); n < 1 || n > 400 {
		t.Errorf("%d fsyncs for 400 appends", n)
	}
}

// TestValues: consecutive values differ, and the text payload compresses
// while the random one does not.
func TestValues(t *testing.T) {
	enc, _ := zstd.NewWriter(nil)
	for payload, want := range map[string][2]float64{PayloadIncompressible: {0.99, 1.01}, PayloadCompressible: {0.1, 0.5}} {
		v := newValues(payload, 1024, 1<<20)
		a, b := v.get(), v.get()
		if bytes.Equal(a, b) || len(a) != 1024 {
			t.Errorf("%s: consecutive values equal or not 1024 bytes", payload)
		}
		var all []byte
		for range 1024 {
			all = append(all, v.get()...)
		}
		if r := float64(len(enc.EncodeAll(all, nil))) / float64(len(all)); r < want[0] || r > want[1] {
			t.Errorf("%s: zstd ratio %.3f, want %g to %g", payload, r, want[0], want[1])
		}
	}
}
