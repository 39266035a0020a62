package archive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
)

const writerA, writerB = "00000000000000aa", "00000000000000bb"

func newUploader(t *testing.T, j *archive.Journal, s archive.Store, writer string, key *archive.Key) *archive.Uploader {
	t.Helper()
	u, err := archive.NewUploader(archive.UploaderOptions{Journal: j, Store: s, WriterID: writer, Key: key, FlushBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// produceTeed produces n records of distinct values to topic through e.
func produceTeed(t *testing.T, e *teed, topic string, n int) {
	t.Helper()
	cl := e.client(t, kgo.DefaultProduceTopic(topic))
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "secret-value-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUploadThenReadBack: everything journaled goes to the store in
// segments; the journal then holds nothing; the archive's coverage is the
// journal's; reading a partition back gives the cluster's batches byte for
// byte and fetches only that partition's blocks.
func TestUploadThenReadBack(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(3, "a", "b"))
	produceTeed(t, e, "a", 200)
	produceTeed(t, e, "b", 50)
	before, err := e.j.Coverage()
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: memstore.New()}
	u := newUploader(t, e.j, store, writerA, nil)
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := e.j.BacklogBytes(); n != 0 {
		t.Errorf("journal backlog %d after upload", n)
	}
	if after, _ := e.j.Coverage(); len(after) != 0 {
		t.Errorf("journal still holds %d partitions after upload", len(after))
	}
	a, err := archive.OpenArchive(ctx(t), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := a.Coverage()
	if fmt.Sprint(strip(got)) != fmt.Sprint(strip(before)) {
		t.Errorf("archive coverage\n%v\nwant the journal's\n%v", strip(got), strip(before))
	}

	// Reading topic b fetches b's blocks only.
	store.ranged = nil
	direct, _ := kgo.NewClient(kgo.SeedBrokers(e.c.ListenAddrs()...))
	defer direct.Close()
	for p := int32(0); p < 3; p++ {
		var offsets []int64
		err := a.ReadPartition(ctx(t), "b", p, func(b *archive.Batch) error {
			offsets = append(offsets, b.BaseOffset)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(offsets) == 0 {
			continue
		}
	}
	for _, r := range store.ranged {
		if !blockOf(a, r, "b") {
			t.Errorf("reading topic b fetched %s, which holds no b data", r)
		}
	}
}

func strip(cov []archive.PartitionCoverage) []string {
	var out []string
	for _, c := range cov {
		out = append(out, fmt.Sprintf("%s/%d %d-%d r%d b%d holes%v", c.Topic, c.Partition, c.StartOffset, c.EndOffset, c.Records, c.Batches, c.Holes))
	}
	return out
}

// countingStore records ranged reads as "key@offset".
type countingStore struct {
	archive.Store
	ranged []string
}

func (s *countingStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.ranged = append(s.ranged, fmt.Sprintf("%s@%d", key, off))
	return s.Store.GetRange(ctx, key, off, n)
}

func blockOf(a *archive.Archive, ref, topic string) bool {
	for _, ix := range a.Indexes() {
		for _, blk := range ix.Blocks {
			if fmt.Sprintf("%s@%d", ix.Segment, blk.Offset) == ref {
				return blk.Topic == topic
			}
		}
	}
	return false
}

// TestUploadObjectCountIndependentOfPartitions: one flush of 10,000
// partitions writes one segment and one index.
func TestUploadObjectCountIndependentOfPartitions(t *testing.T) {
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var batches []archive.Batch
	for p := int32(0); p < 10000; p++ {
		batches = append(batches, archive.Batch{Topic: "wide", Partition: p, BaseOffset: 0, AckTime: time.Now(), LogAppendTime: -1, Data: recordBatch("v")})
	}
	if _, err := j.Append(batches, nil); err != nil {
		t.Fatal(err)
	}
	j.Commit()
	s := memstore.New()
	u, err := archive.NewUploader(archive.UploaderOptions{Journal: j, Store: s, WriterID: writerA})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if s.Puts() != 2 {
		t.Fatalf("%d objects for one flush of 10,000 partitions, want 2", s.Puts())
	}
	a, err := archive.OpenArchive(ctx(t), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(a.Coverage()); n != 10000 {
		t.Fatalf("archive covers %d partitions, want 10000", n)
	}
}

// TestUploadRetriesWhileStoreDown: while the store fails, nothing leaves
// the journal; once it answers, everything uploads, once.
func TestUploadRetriesWhileStoreDown(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "down"))
	produceTeed(t, e, "down", 20)
	s := memstore.New()
	u := newUploader(t, e.j, s, writerA, nil)
	s.Fail(errors.New("503 Slow Down"))
	if err := u.Flush(ctx(t)); err == nil {
		t.Fatal("flush to a failing store succeeded")
	}
	if u.Health() == nil {
		t.Error("uploader healthy while the store fails")
	}
	if e.j.BacklogBytes() == 0 {
		t.Fatal("journal dropped data while the store was down")
	}
	produceTeed(t, e, "down", 20)
	s.Fail(nil)
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if u.Health() != nil || e.j.BacklogBytes() != 0 {
		t.Errorf("after recovery: health %v, backlog %d", u.Health(), e.j.BacklogBytes())
	}
	a, _ := archive.OpenArchive(ctx(t), s, nil)
	if c := a.Coverage(); len(c) != 1 || c[0].Records != 40 || len(c[0].Holes) != 0 {
		t.Fatalf("archive after recovery: %v", strip(c))
	}
}

// failIndexOnce fails the first index PUT after the segment went in: the
// next flush finds its own segment there and must carry on.
type failIndexOnce struct {
	archive.Store
	failed bool
}

func (s *failIndexOnce) Put(ctx context.Context, key string, r io.Reader, n int64) error {
	if strings.HasSuffix(key, ".idx") && !s.failed {
		s.failed = true
		return errors.New("connection reset")
	}
	return s.Store.Put(ctx, key, r, n)
}

func TestUploadInterruptedBetweenSegmentAndIndex(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "cut"))
	produceTeed(t, e, "cut", 10)
	mem := memstore.New()
	s := &failIndexOnce{Store: mem}
	u := newUploader(t, e.j, s, writerA, nil)
	if err := u.Flush(ctx(t)); err == nil {
		t.Fatal("expected the index put to fail")
	}
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatalf("second flush: %v", err)
	}
	if mem.Puts() != 2 {
		t.Errorf("%d objects, want the segment and its index once each", mem.Puts())
	}
	a, _ := archive.OpenArchive(ctx(t), mem, nil)
	if c := a.Coverage(); len(c) != 1 || c[0].Records != 10 {
		t.Fatalf("coverage %v", strip(c))
	}
}

// TestTwoWritersCountedOnce: two writers whose journals hold copies of the
// same batches (as a backfill and a proxy can) upload into one store;
// coverage and reads count each batch once.
func TestTwoWritersCountedOnce(t *testing.T) {
	s := memstore.New()
	for i, w := range []string{writerA, writerB} {
		j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), w)})
		if err != nil {
			t.Fatal(err)
		}
		var bs []archive.Batch
		for o := int64(0); o < 10; o++ {
			if i == 1 && o < 5 {
				continue // writer B has the second half only, plus overlap
			}
			bs = append(bs, archive.Batch{Topic: "shared", Partition: 0, BaseOffset: o, AckTime: time.Now(), LogAppendTime: -1, Data: recordBatch(fmt.Sprint(o))})
		}
		if i == 1 {
			bs = append(bs, archive.Batch{Topic: "shared", Partition: 0, BaseOffset: 10, AckTime: time.Now(), LogAppendTime: -1, Data: recordBatch("10")})
		}
		j.Append(bs, nil)
		j.Commit()
		if err := newUploader(t, j, s, w, nil).Flush(ctx(t)); err != nil {
			t.Fatal(err)
		}
		j.Close()
	}
	a, err := archive.OpenArchive(ctx(t), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := a.Coverage()
	if len(c) != 1 || c[0].Records != 11 || c[0].EndOffset != 11 || len(c[0].Holes) != 0 {
		t.Fatalf("coverage %v, want 11 records once each", strip(c))
	}
	var seen []int64
	a.ReadPartition(ctx(t), "shared", 0, func(b *archive.Batch) error {
		seen = append(seen, b.BaseOffset)
		return nil
	})
	if fmt.Sprint(seen) != "[0 1 2 3 4 5 6 7 8 9 10]" {
		t.Fatalf("read %v", seen)
	}
}

// TestEncryptedArchive: with a key, no object holds a produced value in
// the clear; without the key, or with another, opening says which key id
// is needed; with the key, the data reads back.
func TestEncryptedArchive(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "enc"))
	produceTeed(t, e, "enc", 30)
	key, _ := archive.NewKey(bytes.Repeat([]byte{7}, 32))
	other, _ := archive.NewKey(bytes.Repeat([]byte{8}, 32))
	s := memstore.New()
	if err := newUploader(t, e.j, s, writerA, key).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	s.List(ctx(t), "", func(o archive.ObjectInfo) error {
		rc, _ := s.Get(ctx(t), o.Key)
		b, _ := io.ReadAll(rc)
		if bytes.Contains(b, []byte("secret-value")) || bytes.Contains(b, []byte("enc")) {
			t.Errorf("%s holds plaintext", o.Key)
		}
		return nil
	})
	for _, k := range []*archive.Key{nil, other} {
		_, err := archive.OpenArchive(ctx(t), s, k)
		if !errors.Is(err, archive.ErrWrongKey) || !strings.Contains(err.Error(), key.ID()) {
			t.Errorf("open with key %q: %v, want ErrWrongKey naming %s", k.ID(), err, key.ID())
		}
	}
	a, err := archive.OpenArchive(ctx(t), s, key)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := a.ReadPartition(ctx(t), "enc", 0, func(b *archive.Batch) error { n++; return nil }); err != nil || n != 30 {
		t.Fatalf("read %d batches, %v", n, err)
	}
}

// TestCorruptObjectNamed: a flipped byte in a segment or an index is
// reported as corruption naming the object.
func TestCorruptObjectNamed(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "c"))
	produceTeed(t, e, "c", 10)
	s := memstore.New()
	if err := newUploader(t, e.j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	seg, idx := archive.SegmentKey(writerA, 0), archive.IndexKey(writerA, 0)
	s.Corrupt(seg, 20)
	a, err := archive.OpenArchive(ctx(t), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = a.ReadPartition(ctx(t), "c", 0, func(*archive.Batch) error { return nil })
	if !errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), seg) {
		t.Errorf("read of a corrupted segment: %v", err)
	}
	s.Corrupt(idx, 12)
	if _, err := archive.OpenArchive(ctx(t), s, nil); !errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), idx) {
		t.Errorf("open with a corrupted index: %v", err)
	}
}

// commitDuringPut journals more batches while the store takes the first
// segment of a flush: one at the start of the journal's key order (before
// anything the flush is still to take) and one after everything.
type commitDuringPut struct {
	archive.Store
	j    *archive.Journal
	done bool
}

func (s *commitDuringPut) Put(ctx context.Context, key string, r io.Reader, n int64) error {
	if !s.done && strings.HasSuffix(key, ".seg") {
		s.done = true
		late := []archive.Batch{
			{Topic: "A", Partition: 0, BaseOffset: 0, AckTime: time.Now(), LogAppendTime: -1, Data: recordBatch("late-A")},
			{Topic: "z", Partition: 0, BaseOffset: 0, AckTime: time.Now(), LogAppendTime: -1, Data: recordBatch("late-z")},
		}
		if _, err := s.j.Append(late, nil); err != nil {
			return err
		}
		if err := s.j.Commit(); err != nil {
			return err
		}
	}
	return s.Store.Put(ctx, key, r, n)
}

// TestFlushOfManySegments: one flush of many segments takes every batch
// once, in segments that each start where the previous one stopped; a
// batch committed during the flush in key order before where the flush
// has got to is not lost but left for the next flush.
func TestFlushOfManySegments(t *testing.T) {
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	const per = 300
	var batches []archive.Batch
	for _, topic := range []string{"a", "b", "c"} {
		for o := int64(0); o < per; o++ {
			v := fmt.Sprintf("%s-%d-%s", topic, o, strings.Repeat("x", 900))
			batches = append(batches, archive.Batch{Topic: topic, Partition: 0, BaseOffset: o, AckTime: time.Now(), LogAppendTime: -1, Data: recordBatch(v)})
		}
	}
	if _, err := j.Append(batches, []archive.Event{{Kind: archive.KindDeleteGroups, Time: time.Now(), Body: []byte(`{"group":"g"}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := j.Commit(); err != nil {
		t.Fatal(err)
	}
	mem := memstore.New()
	s := &commitDuringPut{Store: mem, j: j}
	u := newUploader(t, j, s, writerA, nil)
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if segs := u.Stats().Segments; segs < 5 {
		t.Fatalf("%d segments, want several (64 KiB each)", segs)
	}
	if j.BacklogBytes() == 0 {
		t.Error("the flush took a batch committed, in key order, before where it had got to")
	}
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := j.BacklogBytes(); n != 0 {
		t.Errorf("journal backlog %d after two flushes", n)
	}
	a, err := archive.OpenArchive(ctx(t), mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"A": 1, "a": per, "b": per, "c": per, "z": 1}
	for topic, n := range want {
		got := 0
		var last int64 = -1
		err := a.ReadPartition(ctx(t), topic, 0, func(b *archive.Batch) error {
			if b.BaseOffset <= last {
				t.Errorf("%s: offset %d after %d", topic, b.BaseOffset, last)
			}
			last = b.BaseOffset
			got++
			return nil
		})
		if err != nil || got != n {
			t.Errorf("%s: read %d batches (%v), want %d", topic, got, err, n)
		}
	}
	// Each batch is in exactly one index.
	seen := map[string]int{}
	for _, ix := range a.Indexes() {
		for _, blk := range ix.Blocks {
			for _, m := range blk.Batches {
				seen[fmt.Sprintf("%s/%d@%d", blk.Topic, blk.Partition, m.BaseOffset)]++
			}
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s in %d uploads", k, n)
		}
	}
	if len(seen) != 3*per+2 {
		t.Errorf("%d batches archived, want %d", len(seen), 3*per+2)
	}
	events := 0
	a.Events(ctx(t), func(string, *archive.Event) error { events++; return nil })
	if events != 1 {
		t.Errorf("%d events archived, want 1", events)
	}
}

// TestLargePartitionInBoundedBlocks: a partition of many megabytes goes
// into several blocks of one segment, each of a few megabytes raw, so a
// segment of compressible data is about the size asked for; zstd is used
// for the blocks it helps (text) and not for the others (random bytes),
// also when a partition's data changes character midway; verify, reads
// and subsets take such segments, encrypted or not.
func TestLargePartitionInBoundedBlocks(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprint("encrypted=", encrypted), func(t *testing.T) {
			var key *archive.Key
			if encrypted {
				key, _ = archive.NewKey(bytes.Repeat([]byte{9}, 32))
			}
			j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j")})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			rnd := rand.New(rand.NewPCG(1, 2))
			src := rand.NewChaCha8([32]byte{1})
			random := func() string {
				b := make([]byte, 16<<10)
				src.Read(b)
				return string(b)
			}
			text := func(o int64) string {
				var sb strings.Builder
				for sb.Len() < 16<<10 {
					fmt.Fprintf(&sb, `{"ts":%d,"level":"info","msg":"request served","path":"/api/v1/orders/%d","status":200}`+"\n", o, rnd.IntN(1000))
				}
				return sb.String()
			}
			// big/0: 8 MiB random then 8 MiB text; big/1: 8 MiB text then
			// 8 MiB random; small/0: a few batches.
			const half = 512 // batches of 16 KiB
			var batches []archive.Batch
			add := func(topic string, p int32, o int64, v string) {
				batches = append(batches, archive.Batch{Topic: topic, Partition: p, BaseOffset: o, AckTime: time.UnixMicro(1_000_000 + o), LogAppendTime: -1, Data: recordBatch(v)})
			}
			for o := int64(0); o < 2*half; o++ {
				if o < half {
					add("big", 0, o, random())
					add("big", 1, o, text(o))
				} else {
					add("big", 0, o, text(o))
					add("big", 1, o, random())
				}
			}
			for o := int64(0); o < 3; o++ {
				add("small", 0, o, text(o))
			}
			if _, err := j.Append(batches, nil); err != nil {
				t.Fatal(err)
			}
			if err := j.Commit(); err != nil {
				t.Fatal(err)
			}
			s := memstore.New()
			u, err := archive.NewUploader(archive.UploaderOptions{Journal: j, Store: s, WriterID: writerA, Key: key, FlushBytes: 64 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if err := u.Flush(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if n := u.Stats().Segments; n != 1 {
				t.Fatalf("%d segments, want 1", n)
			}
			a, err := archive.OpenArchive(ctx(t), s, key)
			if err != nil {
				t.Fatal(err)
			}
			ix := a.Indexes()[0]
			blocks := map[string][]archive.IndexBlock{}
			for _, blk := range ix.Blocks {
				k := fmt.Sprintf("%s/%d", blk.Topic, blk.Partition)
				blocks[k] = append(blocks[k], blk)
				if blk.RawLength > 4<<20 {
					t.Errorf("%s: block of %d bytes raw", k, blk.RawLength)
				}
			}
			for _, k := range []string{"big/0", "big/1"} {
				bs := blocks[k]
				if len(bs) < 4 {
					t.Fatalf("%s in %d blocks, want several", k, len(bs))
				}
				var codecs []int
				for i := 1; i < len(bs); i++ {
					if bs[i].Batches[0].BaseOffset != bs[i-1].Batches[len(bs[i-1].Batches)-1].BaseOffset+1 {
						t.Errorf("%s: block %d starts at %d after %d", k, i, bs[i].Batches[0].BaseOffset, bs[i-1].Batches[len(bs[i-1].Batches)-1].BaseOffset)
					}
				}
				for _, b := range bs {
					codecs = append(codecs, b.Codec)
				}
				// Each block is compressed exactly when it holds text
				// (a block straddling the change may go either way).
				first, lastC := codecs[0], codecs[len(codecs)-1]
				if k == "big/0" && (first != 0 || lastC != 1) || k == "big/1" && (first != 1 || lastC != 0) {
					t.Errorf("%s: block codecs %v", k, codecs)
				}
			}
			rep, err := archive.VerifyIntegrity(ctx(t), s, archive.VerifyOptions{Key: key})
			if err != nil || !rep.OK() {
				t.Fatalf("verify: %v %+v", err, rep)
			}
			for p := int32(0); p < 2; p++ {
				next := int64(0)
				err := a.ReadPartition(ctx(t), "big", p, func(b *archive.Batch) error {
					if b.BaseOffset != next {
						return fmt.Errorf("offset %d, want %d", b.BaseOffset, next)
					}
					next++
					return nil
				})
				if err != nil || next != 2*half {
					t.Fatalf("read big/%d: %d batches, %v", p, next, err)
				}
			}
			// A subset by time takes part of each partition's blocks.
			sub, err := archive.SubsetUpload(ctx(t), s, key, ix, archive.Selection{Topics: []string{"big"}, Until: time.UnixMicro(1_000_000 + half)})
			if err != nil || sub.Whole || sub.Batches != 2*(half+1) {
				t.Fatalf("subset: %d batches, whole %v, %v", sub.Batches, sub.Whole, err)
			}

			// Segments of text are about the size asked for, not a
			// fraction of it.
			var texts []archive.Batch
			for o := int64(0); o < 1000; o++ {
				texts = append(texts, archive.Batch{Topic: "logs", Partition: 0, BaseOffset: o, AckTime: time.Now(), LogAppendTime: -1, Data: recordBatch(text(o))})
			}
			j.Append(texts, nil)
			j.Commit()
			s2 := memstore.New()
			u2, err := archive.NewUploader(archive.UploaderOptions{Journal: j, Store: s2, WriterID: writerB, Key: key, FlushBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if err := u2.Flush(ctx(t)); err != nil {
				t.Fatal(err)
			}
			a2, err := archive.OpenArchive(ctx(t), s2, key)
			if err != nil {
				t.Fatal(err)
			}
			for i, ix := range a2.Indexes() {
				if i < len(a2.Indexes())-1 && (ix.SegSize < 3<<18 || ix.SegSize > 5<<18) {
					t.Errorf("segment %d of text holds %d bytes, asked for 1 MiB", i, ix.SegSize)
				}
			}
		})
	}
}

// loseIndexAnswer stores the first index PUT but answers it with an
// error, as when a connection drops after the store took the object.
type loseIndexAnswer struct {
	archive.Store
	lost bool
}

func (s *loseIndexAnswer) Put(ctx context.Context, key string, r io.Reader, n int64) error {
	err := s.Store.Put(ctx, key, r, n)
	if err == nil && strings.HasSuffix(key, ".idx") && !s.lost {
		s.lost = true
		return errors.New("connection reset by peer")
	}
	return err
}

// TestUploadIndexAnswerLost: the store took the index but its answer was
// lost; the retry finds the segment and an index describing it (created a
// moment earlier), takes the upload as done, and goes on.
func TestUploadIndexAnswerLost(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "lost"))
	produceTeed(t, e, "lost", 10)
	mem := memstore.New()
	u := newUploader(t, e.j, &loseIndexAnswer{Store: mem}, writerA, nil)
	if err := u.Flush(ctx(t)); err == nil {
		t.Fatal("expected the index put to fail")
	}
	time.Sleep(2 * time.Microsecond) // the index built again has another creation time
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatalf("second flush: %v", err)
	}
	produceTeed(t, e, "lost", 5)
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatalf("third flush: %v", err)
	}
	var keys []string
	mem.List(ctx(t), "", func(o archive.ObjectInfo) error { keys = append(keys, o.Key); return nil })
	want := []string{archive.IndexKey(writerA, 0), archive.IndexKey(writerA, 1), archive.SegmentKey(writerA, 0), archive.SegmentKey(writerA, 1)}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Errorf("objects %v, want %v", keys, want)
	}
	a, _ := archive.OpenArchive(ctx(t), mem, nil)
	if c := a.Coverage(); len(c) != 1 || c[0].Records != 15 || e.j.BacklogBytes() != 0 {
		t.Fatalf("coverage %v, backlog %d", strip(c), e.j.BacklogBytes())
	}
}

// failSeg fails the first PUT of one segment key, and counts the PUTs of
// each key.
type failSeg struct {
	archive.Store
	key  string
	mu   sync.Mutex
	puts map[string]int
}

func (s *failSeg) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	s.mu.Lock()
	if s.puts == nil {
		s.puts = map[string]int{}
	}
	s.puts[key]++
	n := s.puts[key]
	s.mu.Unlock()
	if key == s.key && n == 1 {
		return errors.New("503 Slow Down")
	}
	return s.Store.Put(ctx, key, r, size)
}

// archivedOnce checks that every batch of the archive in s is in exactly
// one upload, that there are want of them, and returns the upload
// numbers in order.
func archivedOnce(t *testing.T, s archive.Store, want int) []uint64 {
	t.Helper()
	a, err := archive.OpenArchive(ctx(t), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	seen := map[string]bool{}
	for _, ix := range a.Indexes() {
		seqs = append(seqs, ix.Seq)
		for _, blk := range ix.Blocks {
			for _, m := range blk.Batches {
				k := fmt.Sprintf("%s/%d@%d", blk.Topic, blk.Partition, m.BaseOffset)
				if seen[k] {
					t.Errorf("batch %s archived twice", k)
				}
				seen[k] = true
			}
		}
	}
	if len(seen) != want {
		t.Errorf("%d batches archived, want %d", len(seen), want)
	}
	return seqs
}

// TestPipelinedFlushFailsCleanly: a flush builds the next segment while
// it uploads one. When an upload fails midway, and when an upload number
// is taken by an earlier run's object, nothing is lost or archived twice,
// and this writer's upload numbers stay consecutive and unique.
func TestPipelinedFlushFailsCleanly(t *testing.T) {
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var batches []archive.Batch
	for p := int32(0); p < 4; p++ {
		for o := int64(0); o < 200; o++ {
			batches = append(batches, archive.Batch{Topic: "t", Partition: p, BaseOffset: o, AckTime: time.Now(), LogAppendTime: -1,
				Data: recordBatch(fmt.Sprintf("%d-%d-%s", p, o, strings.Repeat("v", 1000)))})
		}
	}
	j.Append(batches, nil)
	if err := j.Commit(); err != nil {
		t.Fatal(err)
	}
	mem := memstore.New()
	// An earlier run's segment holds number 3, with other bytes.
	if err := mem.Put(ctx(t), archive.SegmentKey(writerA, 3), strings.NewReader("AMBRSEG1 other"), 14); err != nil {
		t.Fatal(err)
	}
	s := &failSeg{Store: mem, key: archive.SegmentKey(writerA, 2)}
	u := newUploader(t, j, s, writerA, nil)
	if err := u.Flush(ctx(t)); err == nil {
		t.Fatal("flush with a failing PUT succeeded")
	}
	if got := u.Stats().Segments; got != 2 {
		t.Errorf("%d segments uploaded before the failure, want 2", got)
	}
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := j.BacklogBytes(); n != 0 {
		t.Errorf("backlog %d after the second flush", n)
	}
	seqs := archivedOnce(t, mem, len(batches))
	for i, q := range seqs {
		want := uint64(i)
		if i >= 3 {
			want++ // 3 was taken
		}
		if q != want {
			t.Fatalf("upload numbers %v: want 0, 1, 2, 4, 5, …", seqs)
		}
	}
}

// TestFailedUploadRetriedAsBuilt: with segments PUT at once, one fails
// while the one after it goes through. The next flush PUTs the failed one
// again, byte for byte under its number, and records both, although the
// journal got batches in between that come first in its order: nothing
// is PUT twice or archived twice, and the upload numbers have no gap.
func TestFailedUploadRetriedAsBuilt(t *testing.T) {
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	add := func(topic string, n int) {
		var bs []archive.Batch
		for o := int64(0); o < int64(n); o++ {
			bs = append(bs, archive.Batch{Topic: topic, Partition: 0, BaseOffset: o, AckTime: time.Now(), LogAppendTime: -1,
				Data: recordBatch(fmt.Sprintf("%s-%d-%s", topic, o, strings.Repeat("v", 1000)))})
		}
		if _, err := j.Append(bs, nil); err != nil {
			t.Fatal(err)
		}
		if err := j.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	add("m", 600)
	mem := memstore.New()
	s := &failSeg{Store: mem, key: archive.SegmentKey(writerA, 2)}
	u, err := archive.NewUploader(archive.UploaderOptions{Journal: j, Store: s, WriterID: writerA, FlushBytes: 64 << 10, MaxInFlight: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Flush(ctx(t)); err == nil {
		t.Fatal("flush with a failing PUT succeeded")
	}
	add("a", 100) // sorts before everything built so far
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := j.BacklogBytes(); n != 0 {
		t.Errorf("backlog %d after the second flush", n)
	}
	seqs := archivedOnce(t, mem, 700)
	for i, q := range seqs {
		if q != uint64(i) {
			t.Fatalf("upload numbers %v, want 0, 1, 2, …", seqs)
		}
	}
	for k, n := range s.puts {
		if want := map[bool]int{true: 2, false: 1}[k == s.key]; n != want {
			t.Errorf("%s PUT %d times, want %d", k, n, want)
		}
	}
}

// stallStore makes PUTs hang until their context ends while stalled.
type stallStore struct {
	archive.Store
	stalled atomic.Bool
}

func (s *stallStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if s.stalled.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Store.Put(ctx, key, r, size)
}

// TestFlushAfterAStalledOne: a flush whose deadline passes while the
// store hangs leaves PUTs that failed with that deadline; the next flush,
// with a store that answers again, PUTs them again and succeeds, rather
// than returning the old flush's failure.
func TestFlushAfterAStalledOne(t *testing.T) {
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var n int64
	add := func(count int) {
		var bs []archive.Batch
		for i := 0; i < count; i++ {
			bs = append(bs, archive.Batch{Topic: "s", Partition: 0, BaseOffset: n, AckTime: time.Now(), LogAppendTime: -1,
				Data: recordBatch(fmt.Sprintf("%d-%s", n, strings.Repeat("v", 1000)))})
			n++
		}
		j.Append(bs, nil)
		if err := j.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	mem := memstore.New()
	s := &stallStore{Store: mem}
	u := newUploader(t, j, s, writerA, nil)
	add(10)
	if err := u.Flush(ctx(t)); err != nil { // one upload recorded: PUTs go two at a time from now on
		t.Fatal(err)
	}
	add(300)
	s.stalled.Store(true)
	short, cancel := context.WithTimeout(ctx(t), 100*time.Millisecond)
	defer cancel()
	if err := u.Flush(short); err == nil {
		t.Fatal("flush to a hanging store succeeded")
	}
	s.stalled.Store(false)
	if err := u.Flush(ctx(t)); err != nil {
		t.Fatalf("flush once the store answers: %v", err)
	}
	if b := j.BacklogBytes(); b != 0 {
		t.Errorf("backlog %d", b)
	}
	archivedOnce(t, mem, 310)
}
