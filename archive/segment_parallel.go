package archive

import (
	"hash/crc32"
	"sync"
)

// Compressing blocks in parallel. zstd is nearly all of the uploader's
// CPU for compressible data and runs on one core; with parallel on, a
// builder hands each closed block to a goroutine that compresses it, goes
// on filling the next, and writes the blocks into the segment in order as
// they come back (drain). At most `parallel` blocks are out at once, each
// a copy of its raw payload (a few MiB): memory stays bounded, and the
// segment is still built in one pass over the journal.

// blockJob is one block being compressed on a goroutine of its own.
type blockJob struct {
	blk  IndexBlock
	raw  []byte // its payload, copied out of the segment
	out  []byte // the compressed payload, if zstd was tried
	try  bool   // whether zstd was tried
	done chan struct{}
}

var jobBufs sync.Pool // *[]byte: raw and out buffers of block jobs

func getJobBuf() []byte {
	if p, ok := jobBufs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

func putJobBuf(b []byte) {
	if cap(b) > 0 && cap(b) <= 2*blockTarget {
		jobBufs.Put(&b)
	}
}

// parallelBlocks has the builder compress up to n blocks at once (0 or 1:
// in line, as it closes each). Call it before adding anything.
func (b *segmentBuilder) parallelBlocks(n int) { b.parallel = n }

// dispatchBlock hands the open block (whose payload ends seg) to a
// goroutine that compresses it if try, and takes its payload out of seg.
func (b *segmentBuilder) dispatchBlock(try bool) {
	payload := b.seg[b.open:]
	job := &blockJob{blk: *b.cur, raw: append(getJobBuf(), payload...), try: try, done: make(chan struct{})}
	b.seg = b.seg[:b.open]
	b.cur = nil
	b.out = append(b.out, job)
	if job.try {
		go func() {
			job.out = zenc.EncodeAll(job.raw, getJobBuf())
			close(job.done)
		}()
	} else {
		close(job.done)
	}
	for len(b.out) > b.parallel {
		b.drainOne()
	}
}

// drainOne waits for the oldest block out and writes it into the segment
// (sealed if the segment is encrypted), in order.
func (b *segmentBuilder) drainOne() {
	job := b.out[0]
	b.out = b.out[1:]
	<-job.done
	blk := job.blk
	blk.RawLength = int64(len(job.raw))
	blk.Codec = codecNone
	stored := job.raw
	if job.try && float64(len(job.out)) < float64(len(job.raw))*(1-compressMinSaving) {
		stored, blk.Codec = job.out, codecZstd
	}
	at := len(b.seg)
	if b.key != nil {
		b.seg = b.key.seal(b.seg, stored, blockAAD(b.idx.Segment, len(b.idx.Blocks)))
	} else {
		b.seg = append(b.seg, stored...)
	}
	stored = b.seg[at:]
	blk.Offset = int64(at)
	blk.Length = int64(len(stored))
	blk.CRC = crc32.Checksum(stored, crcTab)
	b.sha.Write(stored)
	b.idx.Blocks = append(b.idx.Blocks, blk)
	if blk.Kind == blockBatches {
		b.last, b.lastRaw = tp{blk.Topic, blk.Partition}, blk.Codec == codecNone
	}
	if blk.RawLength > 0 {
		b.outRatio = float64(blk.Length) / float64(blk.RawLength)
	}
	putJobBuf(job.raw)
	putJobBuf(job.out)
}

// outBytes estimates what the blocks out will store: their raw size at
// the ratio of the last one drained.
func (b *segmentBuilder) outBytes() int {
	var raw int
	for _, j := range b.out {
		raw += len(j.raw)
	}
	r := b.outRatio
	if r <= 0 || r > 1 {
		r = 1
	}
	return int(float64(raw) * r)
}
