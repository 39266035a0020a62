package reliability_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
	"github.com/amber-kafka/amber/internal/testkit"
)

// newerFormatIndex rewrites an index object (FORMAT.md: magic, flags, key
// id, zstd body, CRC32C) as index format 3, with a valid checksum: what an
// amber from the future would write.
func newerFormatIndex(t *testing.T, b []byte) []byte {
	t.Helper()
	idLen := int(b[9])
	head, body := b[:10+idLen], b[10+idLen:len(b)-4]
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	raw, err := dec.DecodeAll(body, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, n := binary.Uvarint(raw)
	raw = append(binary.AppendUvarint(nil, 3), raw[n:]...)
	enc, _ := zstd.NewWriter(nil)
	out := append(append([]byte(nil), head...), enc.EncodeAll(raw, nil)...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
}

// TestDamagedArchiveObjects damages a real archive's objects the ways
// media and people do: truncated, emptied, a flipped byte, garbage
// appended, a newer format. For each, on a fresh copy: the integrity
// check names the object and does not pass; opening the archive refuses
// a damaged index, naming it (a newer format says to upgrade amber); a
// damaged segment is refused when its data is read, naming it. Nothing
// panics, nothing damaged is returned as data. (A wrong encryption key is
// TestArchiveErrorsSayWhatToFix in cmd/amber and TestEncryptedArchive in
// archive; a tampered export TestExportVerifyDetectsTampering in
// archive/export and cmd/amber.)
func TestDamagedArchiveObjects(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "dmg"))
	orig := filepath.Join(t.TempDir(), "archive")
	store, err := file.New(orig)
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store})
	s := startStream(t, []string{n.Addr()}, "dmg", "dmg", 8)
	s.waitAcks(t, 200, 30*time.Second)
	s.finish()
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	idxs, _ := filepath.Glob(filepath.Join(orig, "v1", "idx", "*", "*.idx"))
	segs, _ := filepath.Glob(filepath.Join(orig, "v1", "seg", "*", "*.seg"))
	if len(idxs) == 0 || len(segs) == 0 {
		t.Fatalf("%d indexes, %d segments", len(idxs), len(segs))
	}
	idxRel, _ := filepath.Rel(orig, idxs[0])
	segRel, _ := filepath.Rel(orig, segs[0])

	type damage func([]byte) []byte
	cases := []struct {
		name    string
		object  string
		damage  damage
		open    error  // OpenArchive must fail with this
		read    bool   // reading the partitions must fail
		message string // in the integrity problem
	}{
		{"index truncated to half", idxRel, func(b []byte) []byte { return b[:len(b)/2] }, archive.ErrCorrupt, false, "checksum"},
		{"index truncated to 9 bytes", idxRel, func(b []byte) []byte { return b[:9] }, archive.ErrCorrupt, false, "not an index"},
		{"index emptied", idxRel, func(b []byte) []byte { return nil }, archive.ErrCorrupt, false, "not an index"},
		{"index byte flipped", idxRel, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }, archive.ErrCorrupt, false, "checksum"},
		{"index with garbage appended", idxRel, func(b []byte) []byte { return append(b, "garbage"...) }, archive.ErrCorrupt, false, "checksum"},
		{"index magic of a newer format", idxRel, func(b []byte) []byte { b[7] = '2'; return b }, archive.ErrFormat, false, "upgrade amber"},
		{"index body format 3, valid checksum", idxRel, func(b []byte) []byte { return newerFormatIndex(t, b) }, archive.ErrFormat, false, "upgrade amber"},
		{"segment truncated to half", segRel, func(b []byte) []byte { return b[:len(b)/2] }, nil, true, "bytes, its index"},
		{"segment emptied", segRel, func(b []byte) []byte { return nil }, nil, true, "bytes, its index"},
		{"segment byte flipped", segRel, func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }, nil, true, "SHA-256"},
		{"segment with garbage appended", segRel, func(b []byte) []byte { return append(b, "garbage"...) }, nil, false, "SHA-256"},
		{"segment magic of a newer format", segRel, func(b []byte) []byte { b[7] = '2'; return b }, nil, false, "does not start with AMBRSEG1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a")
			if out, err := exec.Command("cp", "-a", orig, dir).CombinedOutput(); err != nil {
				t.Fatalf("%v %s", err, out)
			}
			path := filepath.Join(dir, tc.object)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, 0o644)
			if err := os.WriteFile(path, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := file.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t, time.Minute)
			key := filepath.ToSlash(tc.object)
			rep, err := archive.VerifyIntegrity(ctx, st, archive.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			named := false
			for _, p := range rep.Problems {
				named = named || (p.Object == key && !p.Warning && strings.Contains(p.Message, tc.message))
			}
			if rep.OK() || !named {
				t.Errorf("verify: ok=%v, want a problem with %s saying %q: %v", rep.OK(), key, tc.message, rep.Problems)
			}
			a, err := archive.OpenArchive(ctx, st, nil)
			if tc.open != nil {
				if !errors.Is(err, tc.open) || !strings.Contains(err.Error(), key) {
					t.Errorf("open: %v, want %v naming %s", err, tc.open, key)
				}
				return
			}
			if err != nil {
				t.Fatalf("open with a damaged segment: %v (only reading its data should fail)", err)
			}
			var readErr error
			batches := 0
			for p := int32(0); p < 2 && readErr == nil; p++ {
				readErr = a.ReadPartition(ctx, "dmg", p, func(b *archive.Batch) error {
					batches++
					if !bytes.HasPrefix(b.Data[16:17], []byte{2}) {
						t.Errorf("a batch with magic %d was returned", b.Data[16])
					}
					return nil
				})
			}
			switch {
			case tc.read && (!errors.Is(readErr, archive.ErrCorrupt) || !strings.Contains(readErr.Error(), key)):
				t.Errorf("read: %v, want ErrCorrupt naming %s", readErr, key)
			case !tc.read && readErr != nil:
				t.Errorf("read: %v: the blocks are intact", readErr)
			}
			t.Logf("verify: %d problems; read: %v", len(rep.Problems), readErr)
		})
	}
}
