package completeness

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/amber-kafka/amber/bench/runner"
)

// Defaults for Options fields left zero. Together they keep a full run
// (two shapes, three rounds) to about a minute on a 2-core machine.
const (
	DefaultRounds      = 3
	DefaultBrokers     = 3
	DefaultPartitions  = 4
	DefaultRecordBytes = 1024
	DefaultShapeBytes  = 256 << 20
)

// TargetRatio is what backfill throughput must reach, as a share of a
// franz-go consumer's reading the same range of the same cluster.
const TargetRatio = 0.9

// Shape is how the log's records are batched, by the franz-go producer
// that writes them.
type Shape = runner.Shape

// DefaultShapes are large uncompressed batches (what a throughput-minded
// producer sends) and small lz4 ones (many batches, each decompressed by
// the consumer and by verify --against).
var DefaultShapes = []Shape{{BatchBytes: 1 << 20, Codec: "none"}, {BatchBytes: 16 << 10, Codec: "lz4"}}

// Options configures a run. The zero value measures the default shapes
// with the defaults above.
type Options struct {
	// Rounds is how many times each measurement runs per shape; the
	// report shows medians. Default DefaultRounds.
	Rounds int
	// Brokers is the size of each kfake cluster. Default DefaultBrokers.
	Brokers int
	// Partitions of the topic. Default DefaultPartitions.
	Partitions int
	// RecordBytes is every record value's size. Default
	// DefaultRecordBytes (1 KiB).
	RecordBytes int
	// ShapeBytes is how many bytes of values each shape's log holds.
	// Default DefaultShapeBytes (256 MiB).
	ShapeBytes int64
	// Shapes to measure. Default DefaultShapes.
	Shapes []Shape
	// Dir is where file archives are written (each run's in a fresh
	// directory, removed after). Default: the system temp directory.
	// With Memory, unused.
	Dir string
	// Memory writes archives to memory (archive/memstore) instead of a
	// directory: takes the disk out of the measurement.
	Memory bool
	// Progress, when set, receives a line per run as it completes.
	Progress io.Writer
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
	return o
}

// Validate reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Rounds < 1 || o.Brokers < 1 || o.Partitions < 1 {
		errs = append(errs, fmt.Errorf("rounds %d, brokers %d, partitions %d: want at least 1 each", o.Rounds, o.Brokers, o.Partitions))
	}
	if o.RecordBytes < 16 || o.ShapeBytes < int64(o.RecordBytes) {
		errs = append(errs, fmt.Errorf("record bytes %d, shape bytes %d: want at least 16 and one record", o.RecordBytes, o.ShapeBytes))
	}
	for _, s := range o.Shapes {
		if s.BatchBytes < 1<<10 || !slices.Contains(runner.Codecs, s.Codec) {
			errs = append(errs, fmt.Errorf("shape %s: want at least 1 KiB batches and a codec of %v", s, runner.Codecs))
		}
	}
	return errors.Join(errs...)
}
