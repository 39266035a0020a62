package restorebench

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"go.uber.org/zap"

	"github.com/amber-kafka/amber/bench/runner"
)

// Defaults for Options fields left zero. Together they keep a full run
// (four shapes, four modes) to about two minutes on a 2-core machine.
const (
	DefaultRounds      = 5
	DefaultBrokers     = 3
	DefaultPartitions  = 8
	DefaultRecordBytes = 1024
	DefaultShapeBytes  = 128 << 20
)

// TargetRatio is what restore throughput must reach, as a share of a
// producer's writing the same records into the same cluster.
const TargetRatio = 1.0

// Modes: what writes the workload, into which cluster.
const (
	// ModeRestore is restore.Run into a kfake cluster.
	ModeRestore = "restore"
	// ModeProduce is a franz-go producer writing the same records into
	// the same cluster.
	ModeProduce = "produce"
	// ModeRestoreBlackhole is restore.Run into a kfake cluster with
	// BlackholeProduce: the broker acknowledges and discards.
	ModeRestoreBlackhole = "restore-blackhole"
	// ModeProduceBlackhole is the producer into that cluster.
	ModeProduceBlackhole = "produce-blackhole"
)

// Modes lists every mode, in the order of a run's first round.
var Modes = []string{ModeRestore, ModeProduce, ModeRestoreBlackhole, ModeProduceBlackhole}

// Shape is how a workload's records are batched.
type Shape = runner.Shape

// DefaultShapes are 16 KiB and 1 MiB batches, uncompressed and lz4.
var DefaultShapes = []Shape{
	{BatchBytes: 16 << 10, Codec: "none"}, {BatchBytes: 16 << 10, Codec: "lz4"},
	{BatchBytes: 1 << 20, Codec: "none"}, {BatchBytes: 1 << 20, Codec: "lz4"},
}

// Options configures a run. The zero value runs every shape and mode with
// the defaults above.
type Options struct {
	// Rounds is how many runs each mode makes per shape. Default
	// DefaultRounds.
	Rounds int
	// Brokers is the size of each kfake cluster. Default DefaultBrokers.
	Brokers int
	// Partitions the workload spreads over. Default DefaultPartitions.
	Partitions int
	// RecordBytes is every record value's size. Default
	// DefaultRecordBytes (1 KiB).
	RecordBytes int
	// ShapeBytes is how many bytes of values each shape's workload
	// holds. Default DefaultShapeBytes.
	ShapeBytes int64
	// Shapes to measure. Default DefaultShapes.
	Shapes []Shape
	// Modes to run (see Modes). Default all.
	Modes []string
	// Parallelism is the restore's (restore.Options.Parallelism). Default
	// 0: the restore's own default.
	Parallelism int
	// Progress, when set, receives a line per run as it completes.
	Progress io.Writer
	// Logger receives the restore's logs. Default zap.NewNop().
	Logger *zap.Logger
}

// EnsureDefaults fills in zero fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Rounds == 0 {
		o.Rounds = DefaultRounds
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
	if o.ShapeBytes == 0 {
		o.ShapeBytes = DefaultShapeBytes
	}
	if len(o.Shapes) == 0 {
		o.Shapes = slices.Clone(DefaultShapes)
	}
	if len(o.Modes) == 0 {
		o.Modes = slices.Clone(Modes)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Validate reports every problem with o at once, joined.
func (o *Options) Validate() error {
	var errs []error
	if o.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds %d: want at least 1", o.Rounds))
	}
	if o.Brokers < 1 {
		errs = append(errs, fmt.Errorf("brokers %d: want at least 1", o.Brokers))
	}
	if o.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions %d: want at least 1", o.Partitions))
	}
	if o.RecordBytes < 16 || o.RecordBytes > 512<<10 {
		errs = append(errs, fmt.Errorf("record bytes %d: want 16 to 524288", o.RecordBytes))
	}
	if o.ShapeBytes < int64(o.RecordBytes)*int64(o.Partitions) {
		errs = append(errs, fmt.Errorf("shape bytes %d: want at least one record per partition", o.ShapeBytes))
	}
	for _, s := range o.Shapes {
		if s.BatchBytes < 2*o.RecordBytes || s.BatchBytes > 1<<20 {
			errs = append(errs, fmt.Errorf("shape %s: batch bytes want two records (%d) to 1 MiB (kfake's max.message.bytes)", s, 2*o.RecordBytes))
		}
		if !slices.Contains(runner.Codecs, s.Codec) {
			errs = append(errs, fmt.Errorf("shape %s: codec %q: want one of %v", s, s.Codec, runner.Codecs))
		}
	}
	for _, m := range o.Modes {
		if !slices.Contains(Modes, m) {
			errs = append(errs, fmt.Errorf("unknown mode %q: want one of %v", m, Modes))
		}
	}
	if o.Parallelism < 0 {
		errs = append(errs, fmt.Errorf("parallelism %d is negative", o.Parallelism))
	}
	return errors.Join(errs...)
}
