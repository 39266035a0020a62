package archivebench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/s3"
	"github.com/amber-kafka/amber/bench/runner"
)

// Upload variants: three ways to write the same objects to the same MinIO.
const (
	// VariantUploader is archive.Uploader.Flush through archive/s3: read
	// the journal, build segments (zstd per block when it saves 10%,
	// AES-GCM if encrypted, SHA-256), one conditional single PUT with a
	// CRC32C checksum per object, then delete what was uploaded from the
	// journal.
	VariantUploader = "uploader"
	// VariantPut is minio-go's PutObject of the uploader's objects, byte
	// for byte, with default options (multipart for objects over 16 MiB,
	// parts sent in parallel).
	VariantPut = "put"
	// VariantPutSingle is PutObject of the same objects with the options
	// archive/s3 uses (s3.PutOptions): one PUT, CRC32C, If-None-Match: *.
	VariantPutSingle = "put-single"
)

// UploadVariants lists the upload variants in the order of the first
// round (the put variants need objects an uploader run has made).
var UploadVariants = []string{VariantUploader, VariantPut, VariantPutSingle}

// UploadConfig is one configuration of the upload scenario.
type UploadConfig struct {
	Payload   string `json:"payload"` // PayloadCompressible or PayloadIncompressible
	Encrypted bool   `json:"encrypted"`
}

func (c UploadConfig) String() string {
	if c.Encrypted {
		return c.Payload + "-aes"
	}
	return c.Payload
}

// UploadConfigs lists every configuration: both payloads, in plaintext
// and encrypted.
var UploadConfigs = []UploadConfig{
	{PayloadIncompressible, false}, {PayloadCompressible, false},
	{PayloadIncompressible, true}, {PayloadCompressible, true},
}

// UploadRun is one round of one configuration: what was produced into the
// journal, what the uploader made of it, and how fast each variant wrote
// those objects.
type UploadRun struct {
	ValueBytes  int64 `json:"value_bytes"` // record values produced
	BatchBytes  int64 `json:"batch_bytes"` // record batches journaled
	Segments    int64 `json:"segments"`
	Objects     int64 `json:"objects"`      // segments and indexes
	StoredBytes int64 `json:"stored_bytes"` // their bytes
	// Transfers holds one entry per variant, by name.
	Transfers map[string]Transfer `json:"transfers"`
}

// Transfer is how one variant wrote the round's objects.
type Transfer struct {
	Seconds  float64 `json:"seconds"`
	MBPerSec float64 `json:"mb_per_sec"` // stored bytes per second
	// ValuesPerSec is MB of record values produced per second of this
	// transfer: the rate of production an uploader this fast keeps up
	// with.
	ValuesPerSec float64 `json:"values_mb_per_sec"`
	// CPUPerGB is this process's CPU per GB of record values produced;
	// MinIOCPUPerGB the MinIO server's.
	CPUPerGB      float64 `json:"cpu_sec_per_gb"`
	MinIOCPUPerGB float64 `json:"minio_cpu_sec_per_gb"`
}

func (r UploadRun) String() string {
	s := fmt.Sprintf("%5.0f MB values → %d objects, %5.1f MB stored", float64(r.ValueBytes)/1e6, r.Objects, float64(r.StoredBytes)/1e6)
	for _, v := range UploadVariants {
		if t, ok := r.Transfers[v]; ok {
			s += fmt.Sprintf("  %s %6.1f MB/s", v, t.MBPerSec)
		}
	}
	return s
}

// uploadBucket is the bucket the upload scenario writes to.
const uploadBucket = "archivebench"

// object is an archive object read back from the store, to be written
// again by the put variants.
type object struct {
	key  string
	data []byte
}

// UploadEnv is the upload scenario's kfake cluster and MinIO server.
type UploadEnv struct {
	o        Options
	cluster  *Cluster
	minio    *MinIO
	writerID string
}

// NewUploadEnv starts a Cluster and a MinIO server with an empty bucket.
func NewUploadEnv(ctx context.Context, o Options) (*UploadEnv, error) {
	o.EnsureDefaults()
	m, err := StartMinIO(ctx, o.MinIO, o.Dir)
	if err != nil {
		return nil, err
	}
	if err := m.MakeBucket(ctx, uploadBucket); err != nil {
		m.Close()
		return nil, err
	}
	c, err := NewCluster(ScenarioUpload, o)
	if err != nil {
		m.Close()
		return nil, err
	}
	return &UploadEnv{o: o, cluster: c, minio: m, writerID: "a3be7bec0ffee000"}, nil
}

// Close stops the cluster and MinIO.
func (e *UploadEnv) Close() error {
	e.cluster.Close()
	return e.minio.Close()
}

// RunConfig runs o.UploadRounds rounds of cfg. Each round produces
// o.UploadBytes of cfg's payload through a sync-mode tee into a new
// journal, then runs every upload variant once, in an order that rotates
// from round to round. The put variants write the objects of the latest
// uploader run, read back beforehand.
func (e *UploadEnv) RunConfig(ctx context.Context, cfg UploadConfig) ([]UploadRun, error) {
	var key *archive.Key
	if cfg.Encrypted {
		raw := make([]byte, 32)
		rand.Read(raw)
		var err error
		if key, err = archive.NewKey(raw); err != nil {
			return nil, err
		}
	}
	var (
		runs []UploadRun
		objs []object
	)
	for round := range e.o.UploadRounds {
		run, newObjs, err := e.round(ctx, cfg, key, round, objs)
		if err != nil {
			return nil, fmt.Errorf("upload %s, round %d: %w", cfg, round+1, err)
		}
		objs = newObjs
		runs = append(runs, run)
		if e.o.Progress != nil {
			fmt.Fprintf(e.o.Progress, "%-8s %-18s round %d/%d  %s\n", ScenarioUpload, cfg, round+1, e.o.UploadRounds, run)
		}
	}
	return runs, nil
}

func (e *UploadEnv) round(ctx context.Context, cfg UploadConfig, key *archive.Key, round int, prev []object) (UploadRun, []object, error) {
	prefix := fmt.Sprintf("%s/r%d", cfg, round)
	defer e.minio.RemovePrefix(context.WithoutCancel(ctx), uploadBucket, prefix+"/")
	tp, err := e.cluster.StartProxy(VariantSync)
	if err != nil {
		return UploadRun{}, nil, err
	}
	defer tp.Close()
	run := UploadRun{Transfers: make(map[string]Transfer)}
	if run.ValueBytes, err = e.fill(ctx, tp, cfg.Payload); err != nil {
		return run, nil, err
	}
	if err := tp.CloseProxy(); err != nil {
		return run, nil, err
	}
	if s := tp.Tee.Stats(); s.Dropped > 0 || s.SyncTimeouts > 0 {
		return run, nil, fmt.Errorf("the tee dropped %d batches (%d sync timeouts) while filling the journal", s.Dropped, s.SyncTimeouts)
	}
	store, err := e.minio.Store(ctx, uploadBucket, prefix+"/"+VariantUploader)
	if err != nil {
		return run, nil, err
	}
	u, err := archive.NewUploader(archive.UploaderOptions{
		Journal: tp.Journal, Store: store, WriterID: e.writerID, FlushBytes: e.o.FlushBytes, Key: key, Logger: e.o.Logger,
	})
	if err != nil {
		return run, nil, err
	}
	objs := prev
	order := rotate(UploadVariants, round)
	for _, v := range order {
		if v != VariantUploader && objs == nil {
			return run, nil, fmt.Errorf("variant %s before any uploader run", v)
		}
		runtime.GC()
		var bytes int64
		t, err := e.transfer(run.ValueBytes, func() (int64, error) {
			var err error
			pprof.Do(ctx, labels(ScenarioUpload, v+"/"+cfg.String()), func(ctx context.Context) {
				switch v {
				case VariantUploader:
					err = u.Flush(ctx)
					bytes = u.Stats().Bytes
				case VariantPutSingle:
					bytes, err = e.put(ctx, store.Client(), objs, prefix+"/"+v+"/", true)
				default:
					bytes, err = e.put(ctx, e.minio.Client, objs, prefix+"/"+v+"/", false)
				}
			})
			return bytes, err
		})
		if err != nil {
			return run, nil, fmt.Errorf("%s: %w", v, err)
		}
		run.Transfers[v] = t
		if v == VariantUploader {
			s := u.Stats()
			run.BatchBytes, run.Segments, run.Objects, run.StoredBytes = s.BatchBytes, s.Segments, s.Objects, s.Bytes
			if left := tp.Journal.BacklogBytes(); left != 0 {
				return run, nil, fmt.Errorf("uploader left %d bytes in the journal", left)
			}
			if objs, err = e.readBack(ctx, prefix+"/"+VariantUploader+"/"); err != nil {
				return run, nil, err
			}
		}
	}
	return run, objs, nil
}

// transfer times fn, which writes objects and returns their bytes, with
// this process's and MinIO's CPU.
func (e *UploadEnv) transfer(valueBytes int64, fn func() (int64, error)) (Transfer, error) {
	t0, c0, m0 := time.Now(), runner.ProcessCPU(), pidCPU(e.minio.Pid())
	n, err := fn()
	d, c1, m1 := time.Since(t0), runner.ProcessCPU(), pidCPU(e.minio.Pid())
	if err != nil {
		return Transfer{}, err
	}
	return Transfer{
		Seconds: d.Seconds(), MBPerSec: mbps(n, d), ValuesPerSec: mbps(valueBytes, d),
		CPUPerGB: perGB((c1 - c0).Seconds(), valueBytes), MinIOCPUPerGB: perGB((m1 - m0).Seconds(), valueBytes),
	}, nil
}

// put writes objs under prefix one after the other, as the uploader does,
// with PutObject through c: default options, or archive/s3's
// (s3.PutOptions: single PUT, CRC32C, If-None-Match: *; c is then the
// archive/s3 store's client, which sends trailing checksums).
func (e *UploadEnv) put(ctx context.Context, c *minio.Client, objs []object, prefix string, single bool) (int64, error) {
	var n int64
	for _, ob := range objs {
		opts := minio.PutObjectOptions{ContentType: "application/octet-stream"}
		if single {
			opts = s3.PutOptions(false)
		}
		if _, err := c.PutObject(ctx, uploadBucket, prefix+ob.key, bytes.NewReader(ob.data), int64(len(ob.data)), opts); err != nil {
			return n, fmt.Errorf("put %s: %w", ob.key, err)
		}
		n += int64(len(ob.data))
	}
	return n, nil
}

// readBack reads every object under prefix, in upload order (segment,
// then its index).
func (e *UploadEnv) readBack(ctx context.Context, prefix string) ([]object, error) {
	var segs, idxs []object
	for info := range e.minio.Client.ListObjects(ctx, uploadBucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if info.Err != nil {
			return nil, info.Err
		}
		r, err := e.minio.Client.GetObject(ctx, uploadBucket, info.Key, minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("read back %s: %w", info.Key, err)
		}
		ob := object{key: info.Key[len(prefix):], data: b}
		if bytes.HasPrefix(b, []byte("AMBRIDX1")) {
			idxs = append(idxs, ob)
		} else {
			segs = append(segs, ob)
		}
	}
	if len(segs) != len(idxs) || len(segs) == 0 {
		return nil, fmt.Errorf("read back %d segments and %d indexes under %s", len(segs), len(idxs), prefix)
	}
	out := make([]object, 0, 2*len(segs))
	for i := range segs {
		out = append(out, segs[i], idxs[i])
	}
	return out, nil
}

// fill produces e.o.UploadBytes of payload through tp and returns the
// value bytes acknowledged.
func (e *UploadEnv) fill(ctx context.Context, tp *TeeProxy, payload string) (int64, error) {
	n := e.o.UploadBytes / int64(e.o.RecordBytes)
	vals := newValues(payload, e.o.RecordBytes, e.o.UploadBytes)
	var acked atomic.Int64
	fail := runner.NewFirstErr()
	err := tp.withClient(ctx, &e.o, ScenarioUpload, func(ctx context.Context, cl *kgo.Client) error {
		promise := func(_ *kgo.Record, err error) {
			if err != nil {
				fail.Set(fmt.Errorf("produce: %w", err))
			} else {
				acked.Add(1)
			}
		}
		for i := int64(0); i < n && fail.Err() == nil; i++ {
			cl.Produce(ctx, &kgo.Record{Value: vals.get()}, promise)
		}
		if err := runner.Flush(ctx, cl, flushTimeout); err != nil {
			return err
		}
		return fail.Err()
	})
	return acked.Load() * int64(e.o.RecordBytes), err
}

// rotate is xs started at its i-th element (mod len), wrapping around.
func rotate[T any](xs []T, i int) []T {
	i %= len(xs)
	return append(append([]T(nil), xs[i:]...), xs[:i]...)
}
