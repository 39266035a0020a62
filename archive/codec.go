package archive

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/protocol"
)

// kgoCodec is protocol.Codec through franz-go's compressors: the same
// implementations clients use, so a re-encoded batch is what a franz-go
// producer would have sent.
type kgoCodec struct {
	dec  kgo.Decompressor
	mu   sync.Mutex
	comp map[int]kgo.Compressor
}

var codec = &kgoCodec{dec: kgo.DefaultDecompressor(), comp: map[int]kgo.Compressor{}}

// Codec returns the record codec for decoding and re-encoding batches.
func Codec() protocol.Codec { return codec }

func (c *kgoCodec) Decompress(src []byte, n int) ([]byte, error) {
	return c.dec.Decompress(src, kgo.CompressionCodecType(n))
}

func (c *kgoCodec) Compress(src []byte, n int) ([]byte, error) {
	c.mu.Lock()
	comp, ok := c.comp[n]
	if !ok {
		var cc kgo.CompressionCodec
		switch n {
		case 1:
			cc = kgo.GzipCompression()
		case 2:
			cc = kgo.SnappyCompression()
		case 3:
			cc = kgo.Lz4Compression()
		case 4:
			cc = kgo.ZstdCompression()
		default:
			c.mu.Unlock()
			return nil, fmt.Errorf("unknown compression codec %d", n)
		}
		var err error
		if comp, err = kgo.DefaultCompressor(cc); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.comp[n] = comp
	}
	c.mu.Unlock()
	var buf bytes.Buffer
	out, typ := comp.Compress(&buf, src)
	if int(typ) != n {
		return nil, fmt.Errorf("compressor used codec %d, asked for %d", typ, n)
	}
	return append([]byte(nil), out...), nil
}
