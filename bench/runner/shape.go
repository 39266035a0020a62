package runner

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Shape is how a benchmark's records are batched: as a franz-go producer
// with that batch size and codec batches them.
type Shape struct {
	// BatchBytes bounds a batch before compression, as franz-go's
	// ProducerBatchMaxBytes does.
	BatchBytes int
	// Codec compresses batches: one of Codecs.
	Codec string
}

// Codecs are the codecs a Shape names, in the order of their Kafka
// compression attribute: none 0, gzip 1, snappy 2, lz4 3, zstd 4.
var Codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// ParseShape parses SIZE/CODEC: SIZE in bytes or with a k or m suffix
// (KiB, MiB), CODEC one of Codecs ("16k/lz4"). The codec is checked by
// the benchmark's Options.Validate, with its other limits.
func ParseShape(s string) (Shape, error) {
	size, codec, ok := strings.Cut(s, "/")
	if !ok {
		return Shape{}, fmt.Errorf("shape %q: want SIZE/CODEC, e.g. 16k/lz4", s)
	}
	mult := 1
	switch {
	case strings.HasSuffix(size, "k"):
		mult, size = 1<<10, strings.TrimSuffix(size, "k")
	case strings.HasSuffix(size, "m"):
		mult, size = 1<<20, strings.TrimSuffix(size, "m")
	}
	n, err := strconv.Atoi(size)
	if err != nil {
		return Shape{}, fmt.Errorf("shape %q: size: %v", s, err)
	}
	return Shape{BatchBytes: n * mult, Codec: codec}, nil
}

// ParseShapes parses a -shapes flag: comma-separated shapes as ParseShape
// takes them, spaces around each ignored.
func ParseShapes(s string) ([]Shape, error) {
	var out []Shape
	for _, f := range strings.Split(s, ",") {
		sh, err := ParseShape(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, nil
}

// String is s as ParseShape takes it, with the largest suffix that
// divides the size ("16k/lz4", "1m/none", "1500/zstd").
func (s Shape) String() string {
	size := strconv.Itoa(s.BatchBytes)
	switch {
	case s.BatchBytes%(1<<20) == 0:
		size = strconv.Itoa(s.BatchBytes>>20) + "m"
	case s.BatchBytes%(1<<10) == 0:
		size = strconv.Itoa(s.BatchBytes>>10) + "k"
	}
	return size + "/" + s.Codec
}

// Compression is the franz-go producer codec of s.Codec: no compression
// for a codec not in Codecs.
func (s Shape) Compression() kgo.CompressionCodec {
	switch s.Codec {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}
