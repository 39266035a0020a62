package archivebench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/amber-kafka/amber/archive"
)

// Defaults for Options fields left zero. Together they keep a full run
// (every scenario) to about five minutes on a 2-core machine.
const (
	DefaultRounds       = 5
	DefaultDuration     = 1500 * time.Millisecond
	DefaultWarmup       = 300 * time.Millisecond
	DefaultBrokers      = 3
	DefaultPartitions   = 8
	DefaultRecordBytes  = 1024
	DefaultLinger       = time.Millisecond
	DefaultPacedMBps    = 100
	DefaultUploadRounds = 3
	DefaultUploadBytes  = 256 << 20
	DefaultFlushBytes   = archive.DefaultFlushBytes
)

// DefaultBatchSizes and DefaultAppenders are the journal scenario's grid:
// every batch size with every appender count.
var (
	DefaultBatchSizes = []int{16 << 10, 256 << 10}
	DefaultAppenders  = []int{1, 4, 16}
)

// Scenario names, in the order Run runs them.
const (
	// ScenarioJournal is journal append throughput (sync group commit)
	// against a raw write+fsync log of the same bytes in the same
	// directory.
	ScenarioJournal = "journal"
	// ScenarioProduce is maximum proxied produce throughput with the tee
	// off, async and sync.
	ScenarioProduce = "produce"
	// ScenarioPaced is proxied produce at a fixed rate (PacedMBps) with
	// the tee off, async and sync: CPU per GB and latency.
	ScenarioPaced = "paced"
	// ScenarioUpload is Uploader.Flush to a real MinIO against minio-go
	// PutObject of the same objects, and what the archive stores per GB
	// produced.
	ScenarioUpload = "upload"
)

// Scenarios lists every scenario, in run order.
var Scenarios = []string{ScenarioJournal, ScenarioProduce, ScenarioPaced, ScenarioUpload}

// Options configures a run. The zero value runs every scenario with the
// defaults above.
type Options struct {
	// Scenarios selects what runs, by name (see Scenarios). Default: all.
	Scenarios []string

	// Rounds is how many rounds the journal, produce and paced scenarios
	// make; each round runs every variant once, in an order that rotates
	// from round to round. Default DefaultRounds.
	Rounds int

	// Duration is the measured window of each journal, produce and paced
	// run. Default DefaultDuration.
	Duration time.Duration

	// Warmup is how long each of those runs goes before its window
	// opens. Default DefaultWarmup.
	Warmup time.Duration

	// Dir is where journals, the raw log and MinIO's data go, each in a
	// temporary directory of its own removed afterwards. It should be on
	// the disk a proxy's --data would use. Default os.TempDir().
	Dir string

	// BatchSizes are the journal scenario's batch sizes in bytes.
	// Default DefaultBatchSizes (16 KiB and 256 KiB).
	BatchSizes []int

	// Appenders are the journal scenario's counts of concurrent
	// appenders, each like one connection in sync mode: append, wait for
	// the commit, repeat. Default DefaultAppenders (1, 4, 16).
	Appenders []int

	// Brokers is the size of the kfake cluster. Default DefaultBrokers.
	Brokers int

	// Partitions is the partition count of the produced topic. Default
	// DefaultPartitions.
	Partitions int

	// RecordBytes is the size of every record value. Default
	// DefaultRecordBytes (1 KiB).
	RecordBytes int

	// Linger is the producer linger. Default DefaultLinger; negative
	// means none.
	Linger time.Duration

	// PacedMBps is the paced scenario's rate in MB (10⁶ bytes) of record
	// values per second. Default DefaultPacedMBps (100).
	PacedMBps float64

	// UploadRounds is how many rounds the upload scenario makes per
	// configuration (payload × encryption). Default DefaultUploadRounds.
	UploadRounds int

	// UploadBytes is how many bytes of record values each upload round
	// produces into the journal before uploading it. Default
	// DefaultUploadBytes (256 MiB).
	UploadBytes int64

	// UploadConfigs selects the upload scenario's configurations.
	// Default UploadConfigs: both payloads, plaintext and encrypted.
	UploadConfigs []UploadConfig

	// FlushBytes is the uploader's segment size (UploaderOptions.FlushBytes).
	// Default DefaultFlushBytes, the proxy's default.
	FlushBytes int

	// MinIO is the MinIO server binary. Default: $AMBER_MINIO, then
	// .tools/bin/minio in the repository, then PATH (see FindMinIO).
	MinIO string

	// Progress, when set, receives one line per run as it completes.
	Progress io.Writer

	// Logger receives the proxy's, journal's and uploader's logs.
	// Default zap.NewNop().
	Logger *zap.Logger

	// stalls, set by Run, counts the journal's write stalls through
	// Logger.
	stalls *stallCounter
}

// EnsureDefaults fills in zero fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if len(o.Scenarios) == 0 {
		o.Scenarios = slices.Clone(Scenarios)
	}
	if o.Rounds == 0 {
		o.Rounds = DefaultRounds
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Warmup == 0 {
		o.Warmup = DefaultWarmup
	}
	if o.Dir == "" {
		o.Dir = os.TempDir()
	}
	if len(o.BatchSizes) == 0 {
		o.BatchSizes = slices.Clone(DefaultBatchSizes)
	}
	if len(o.Appenders) == 0 {
		o.Appenders = slices.Clone(DefaultAppenders)
	}
	if o.Brokers == 0 {
		o.Brokers = DefaultBrokers
	}
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.RecordBytes == 0 {
		o.RecordBytes = DefaultRecordBytes
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if o.PacedMBps == 0 {
		o.PacedMBps = DefaultPacedMBps
	}
	if o.UploadRounds == 0 {
		o.UploadRounds = DefaultUploadRounds
	}
	if o.UploadBytes == 0 {
		o.UploadBytes = DefaultUploadBytes
	}
	if len(o.UploadConfigs) == 0 {
		o.UploadConfigs = slices.Clone(UploadConfigs)
	}
	if o.FlushBytes == 0 {
		o.FlushBytes = DefaultFlushBytes
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Validate reports every problem with o at once, joined.
func (o *Options) Validate() error {
	var errs []error
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q: want one of %v", s, Scenarios))
		}
	}
	if o.Rounds < 1 || o.UploadRounds < 1 {
		errs = append(errs, fmt.Errorf("rounds %d, upload rounds %d: want at least 1", o.Rounds, o.UploadRounds))
	}
	if o.Duration < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("duration %s: want at least 10ms", o.Duration))
	}
	if o.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup %s is negative", o.Warmup))
	}
	for _, n := range o.BatchSizes {
		if n < 64 || n > 64<<20 {
			errs = append(errs, fmt.Errorf("batch size %d: want 64 B to 64 MiB", n))
		}
	}
	for _, n := range o.Appenders {
		if n < 1 || n > 1024 {
			errs = append(errs, fmt.Errorf("appenders %d: want 1 to 1024", n))
		}
	}
	if o.Brokers < 1 || o.Partitions < 1 {
		errs = append(errs, fmt.Errorf("brokers %d, partitions %d: want at least 1 of each", o.Brokers, o.Partitions))
	}
	if o.RecordBytes < 64 || o.RecordBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("record bytes %d: want 64 to 1048576", o.RecordBytes))
	}
	if o.PacedMBps <= 0 {
		errs = append(errs, fmt.Errorf("paced rate %g MB/s: want above 0", o.PacedMBps))
	}
	if o.UploadBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("upload bytes %d: want at least 1 MiB", o.UploadBytes))
	}
	for _, c := range o.UploadConfigs {
		if c.Payload != PayloadCompressible && c.Payload != PayloadIncompressible {
			errs = append(errs, fmt.Errorf("upload payload %q: want %s or %s", c.Payload, PayloadCompressible, PayloadIncompressible))
		}
	}
	if o.FlushBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("flush bytes %d: want at least 1 KiB", o.FlushBytes))
	}
	if st, err := os.Stat(o.Dir); err != nil || !st.IsDir() {
		errs = append(errs, fmt.Errorf("dir %q: not a directory", o.Dir))
	}
	return errors.Join(errs...)
}

// linger is the producer linger to configure: Linger, with negative as 0.
func (o *Options) linger() time.Duration { return max(o.Linger, 0) }

// runs reports whether scenario s is selected.
func (o *Options) runs(s string) bool { return slices.Contains(o.Scenarios, s) }

// pacedRate is the paced scenario's rate in records/s.
func (o *Options) pacedRate() float64 { return o.PacedMBps * 1e6 / float64(o.RecordBytes) }
