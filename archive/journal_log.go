package archive

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The batch log holds the journal's record batches; Pebble holds, under
// each batch key, only a pointer into it (journal_format.go). The journal
// is a queue — appended in arrival order, read back in key order by the
// uploader, deleted once uploaded — and an LSM tree would copy every batch
// through its memtable, its WAL, a flush and compactions. Here a batch is
// written once: appended to the active log file with the rest of its group
// commit in one write and one fdatasync.
//
//	DIR/batches/0000000000000001.log, 0000000000000002.log, ...
//
//	file     header, then records, then (after a clean close) an end record
//	+----------------+----------------+----------------+---------------+
//	| "AMBRLOG3"     | file number    | salt           | CRC-32C of    |
//	| magic, 8 bytes | uint64 BE      | 8 random bytes | bytes 0-23    |
//	+----------------+----------------+----------------+---------------+
//
//	record
//	+-------+-------------+----------------+------------------------------------+
//	| 0xB2  | body length | CRC-32C of     | body: key length uvarint | batch   |
//	| magic | uint32 BE   | salt ++ body   | key | batch value (v1, with data)  |
//	+-------+-------------+----------------+------------------------------------+
//	end record: body length 0 (written at a clean close)
//
// Journal format 2 wrote files without a header and records with magic
// 0xB1 and the CRC-32C of the body alone; such files are still read (and
// removed, not reused, once uploaded).
//
// A file is appended to by the journal's writer goroutine only; it starts
// a new one at every open and once the active one passes logFileSize.
// Crash safety: a group commit first makes its records durable (write,
// fdatasync), then commits their pointers to Pebble without an fsync of
// its own, with meta "logpos" (file number, offset) saying how far the log
// is pointed to. A crash can lose those pointers but not the records, so
// opening scans the log from the durable logpos on and points at every
// whole record that has no pointer. A torn record at the end of a file is
// where its commit failed: nobody was told it was journaled, and the scan
// stops there.
//
// Reuse: a file whose batches are all uploaded is kept as a spare (up to
// JournalOptions.SpareLogFiles), and the next new file is a spare renamed
// and written from its start. Overwriting blocks the file already has makes fdatasync flush
// data only; appending to a new file also commits the filesystem's block
// allocation and size change with every fdatasync, which here costs twice
// the CPU and time per sync (docs/BENCHMARKS-ARCHIVE.md). What a reused
// file held before stays behind its new records; the salt, new for each
// use, makes it fail the checksum, so a scan stops where the new records
// end. The salt is random so that no record a client crafted inside a
// batch can pass for one. Three rules keep the scan away from spares and
// stale contents: a spare's number is always below the durable logpos's
// file (logpos is moved to the new file, synced, before a file is started,
// and at open); a reused file's rename is synced before anything is
// written to it; and a file whose header is not its own (a rename a crash
// kept without the new header) holds nothing.
const (
	logRecordMagic   = 0xB2
	logRecordMagicV2 = 0xB1 // journal format 2: no file header, the CRC of the body alone
	logRecordHeader  = 1 + 4 + 4
	logHeaderMagic   = "AMBRLOG3"
	logHeaderSize    = 8 + 8 + 8 + 4
	logFileSize      = 64 << 20
	logDir           = "batches"
	// logChunk bounds the group commit's buffer: a larger group (async
	// mode at full speed gathers tens of MB) is written in chunks of
	// about this size and synced once, instead of copied into one
	// buffer that grows by doubling.
	logChunk = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errLogFileGone: a pointer's file was removed, because every batch in it
// was uploaded after the pointer was read.
var errLogFileGone = errors.New("batch log file removed")

// errLogEnd: the end record a clean close writes.
var errLogEnd = errors.New("end of batch log file")

// batchPtr is where a batch's record is in the log.
type batchPtr struct {
	file    uint64
	off     int64
	size    uint32 // the whole record
	dataLen uint32 // its record batch's bytes (the journal's backlog counts them)
}

// logFile is one file of the batch log, open for reading (and for
// appending, if active). refs counts readers between acquire and release;
// a file whose last batch is uploaded is removed when no reader holds it.
type logFile struct {
	num    uint64
	f      vfs.File
	refs   int
	live   int64 // pointers into it
	doomed bool  // remove once refs is 0

	magic    byte   // of its records: logRecordMagic, or logRecordMagicV2 in a file of format 2
	seed     uint32 // its records' CRC starts from this: the CRC-32C of the salt (0 in format 2)
	start    int64  // where its records start (after the header)
	stale    bool   // its header is another file's: it holds no records
	reusable bool   // it has a header, so it may be reused once uploaded
}

type batchLog struct {
	fs        vfs.FS
	dir       string
	readOnly  bool
	fileSize  int64 // rotate past this (logFileSize; tests make it small)
	maxSpares int

	mu     sync.Mutex
	files  map[uint64]*logFile
	spares []uint64 // numbers of files kept for reuse, all batches uploaded
	last   uint64   // the highest file number there is
	reused int      // files started from a spare (tests read it)
	active *logFile // nil when read-only and until startWriting
	size   int64    // of the active file, including chunks of the group being built
	buf    []byte   // the group commit being built (writer goroutine only)
	err    error    // a chunk's write failed: the group fails
}

func logFileName(num uint64) string { return fmt.Sprintf("%016d.log", num) }

// openBatchLog opens the log's files for reading; a writable journal
// calls startWriting once it has recovered.
func openBatchLog(fs vfs.FS, journalDir string, readOnly bool, spares int) (*batchLog, error) {
	l := &batchLog{fs: fs, dir: filepath.Join(journalDir, logDir), readOnly: readOnly, fileSize: logFileSize, maxSpares: spares, files: map[uint64]*logFile{}}
	if !readOnly {
		if err := fs.MkdirAll(l.dir, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", l.dir, err)
		}
		// The directory entry must survive a crash too.
		if err := syncDir(fs, journalDir); err != nil {
			return nil, err
		}
	}
	names, err := fs.List(l.dir)
	if err != nil {
		if readOnly && errors.Is(err, os.ErrNotExist) {
			return l, nil // a journal of format 1, or without batches yet
		}
		return nil, fmt.Errorf("list %s: %w", l.dir, err)
	}
	for _, name := range names {
		num, ok := parseLogFileName(name)
		if !ok {
			continue
		}
		f, err := fs.Open(fs.PathJoin(l.dir, name))
		if err != nil {
			l.close()
			return nil, fmt.Errorf("open batch log %s: %w", name, err)
		}
		lf := &logFile{num: num, f: f}
		if err := lf.readHeader(); err != nil {
			f.Close()
			l.close()
			return nil, err
		}
		l.files[num] = lf
		l.last = max(l.last, num)
	}
	return l, nil
}

// readHeader reads lf's header, if it has one.
func (lf *logFile) readHeader() error {
	var h [logHeaderSize]byte
	n, err := lf.f.ReadAt(h[:], 0)
	if err != nil && err != io.EOF {
		return fmt.Errorf("read batch log %s: %w", logFileName(lf.num), err)
	}
	if n < len(logHeaderMagic) || string(h[:len(logHeaderMagic)]) != logHeaderMagic {
		lf.magic = logRecordMagicV2 // format 2, or a new file whose header never reached the disk
		return nil
	}
	lf.magic, lf.start, lf.reusable = logRecordMagic, logHeaderSize, true
	if n < logHeaderSize || crc32.Checksum(h[:24], castagnoli) != binary.BigEndian.Uint32(h[24:]) ||
		binary.BigEndian.Uint64(h[8:]) != lf.num {
		lf.stale = true // a reused file whose new header a crash lost: nothing in it was acknowledged
		return nil
	}
	lf.seed = saltSeed(h[16:24])
	return nil
}

// newLogHeader makes a header for file num with a new salt.
func newLogHeader(num uint64) (hdr []byte, seed uint32, err error) {
	hdr = make([]byte, logHeaderSize)
	copy(hdr, logHeaderMagic)
	binary.BigEndian.PutUint64(hdr[8:], num)
	if _, err := rand.Read(hdr[16:24]); err != nil {
		return nil, 0, fmt.Errorf("batch log salt: %w", err)
	}
	binary.BigEndian.PutUint32(hdr[24:], crc32.Checksum(hdr[:24], castagnoli))
	return hdr, saltSeed(hdr[16:24]), nil
}

// saltSeed is what a file's record CRCs start from: the CRC-32C of its salt.
func saltSeed(salt []byte) uint32 { return crc32.Checksum(salt, castagnoli) }

// startWriting starts the active file after the highest-numbered one.
func (l *batchLog) startWriting() error { return l.rotate(l.nextNum()) }

// nextNum is the number the next active file gets.
func (l *batchLog) nextNum() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last + 1
}

func parseLogFileName(name string) (uint64, bool) {
	if !strings.HasSuffix(name, ".log") || len(name) != 16+4 {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(name, ".log"), 10, 64)
	return n, err == nil && n > 0
}

// rotate starts active file num, a spare renamed if there is one: its
// name synced, then its header written (made durable by the first group
// commit's fdatasync).
func (l *batchLog) rotate(num uint64) error {
	path := l.fs.PathJoin(l.dir, logFileName(num))
	f, err := l.reuseSpare(path)
	if err != nil {
		return err
	}
	if f == nil {
		if f, err = l.fs.Create(path, vfs.WriteCategoryUnspecified); err != nil {
			return fmt.Errorf("create batch log %s: %w", path, err)
		}
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		f.Close()
		return err
	}
	hdr, seed, err := newLogHeader(num)
	if err == nil {
		_, err = f.Write(hdr)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("write batch log %s: %w", path, err)
	}
	lf := &logFile{num: num, f: f, magic: logRecordMagic, seed: seed, start: logHeaderSize, reusable: true}
	l.mu.Lock()
	if old := l.active; old != nil && old.live == 0 && old.refs == 0 {
		l.removeLocked(old)
	}
	l.files[num] = lf
	l.active = lf
	l.size = logHeaderSize
	l.last = max(l.last, num)
	l.mu.Unlock()
	return nil
}

// reuseSpare renames a spare to path and opens it for writing from its
// start; nil if there is no spare (or it could not be reused: it is
// removed and a new file made instead).
func (l *batchLog) reuseSpare(path string) (vfs.File, error) {
	l.mu.Lock()
	if len(l.spares) == 0 {
		l.mu.Unlock()
		return nil, nil
	}
	old := l.fs.PathJoin(l.dir, logFileName(l.spares[0]))
	l.spares = l.spares[1:]
	l.reused++
	l.mu.Unlock()
	if err := l.fs.Rename(old, path); err != nil {
		l.fs.Remove(old)
		return nil, nil
	}
	f, err := l.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("reuse batch log file as %s: %w", path, err)
	}
	return f, nil
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// add appends a record for batch b under key to the group commit being
// built and returns where it will be.
func (l *batchLog) add(key []byte, valHeader []byte, data []byte) batchPtr {
	if n := logRecordHeader + binary.MaxVarintLen64 + len(key) + len(valHeader) + len(data); len(l.buf) > 0 && len(l.buf)+n > logChunk {
		l.writeChunk()
	}
	start := len(l.buf)
	l.buf = append(l.buf, l.active.magic, 0, 0, 0, 0, 0, 0, 0, 0)
	l.buf = binary.AppendUvarint(l.buf, uint64(len(key)))
	l.buf = append(l.buf, key...)
	l.buf = append(l.buf, valHeader...)
	l.buf = append(l.buf, data...)
	body := l.buf[start+logRecordHeader:]
	binary.BigEndian.PutUint32(l.buf[start+1:], uint32(len(body)))
	binary.BigEndian.PutUint32(l.buf[start+5:], crc32.Update(l.active.seed, castagnoli, body))
	return batchPtr{file: l.active.num, off: l.size + int64(start), size: uint32(len(l.buf) - start), dataLen: uint32(len(data))}
}

// needRotate reports whether the active file is full; the writer rotates
// before building a group commit, after making Pebble's pointers into the
// full file durable.
func (l *batchLog) needRotate() bool { return l.size >= l.fileSize }

// writeGroup writes the group commit built by add and syncs it; it returns
// the active file's new end (logpos). On an error the caller fails the
// journal: what reached the file is unknown.
func (l *batchLog) writeGroup() (file uint64, end int64, err error) {
	l.writeChunk()
	if err := l.err; err != nil {
		l.err = nil
		return 0, 0, err
	}
	if err := l.active.f.SyncData(); err != nil {
		return 0, 0, fmt.Errorf("sync batch log: %w", err)
	}
	l.mu.Lock()
	end = l.size
	l.mu.Unlock()
	return l.active.num, end, nil
}

// writeChunk writes what the group has built so far (without a sync).
func (l *batchLog) writeChunk() {
	if len(l.buf) == 0 || l.err != nil {
		l.buf = l.buf[:0]
		return
	}
	if _, err := l.active.f.Write(l.buf); err != nil {
		l.err = fmt.Errorf("write batch log: %w", err)
	}
	l.mu.Lock()
	l.size += int64(len(l.buf))
	l.mu.Unlock()
	l.buf = l.buf[:0]
	if cap(l.buf) > 2*logChunk {
		l.buf = nil // one batch larger than a chunk need not pin its buffer
	}
}

// discardGroup forgets what a group commit has built and not written.
// Chunks already written stay in the file without pointers; a recovery
// scan may point at them later, which only keeps batches the brokers did
// accept.
func (l *batchLog) discardGroup() { l.buf = l.buf[:0]; l.err = nil }

// addLive counts pointers into file num (negative: released). A file other
// than the active one that no pointer uses any more is removed.
func (l *batchLog) addLive(num uint64, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lf := l.files[num]
	if lf == nil {
		return
	}
	lf.live += n
	if lf.live <= 0 && lf != l.active {
		l.removeLocked(lf)
	}
}

// removeLocked removes lf now, or once its last reader is done.
func (l *batchLog) removeLocked(lf *logFile) {
	lf.doomed = true
	if lf.refs > 0 {
		return
	}
	delete(l.files, lf.num)
	lf.f.Close()
	if lf.reusable && !l.readOnly && len(l.spares) < l.maxSpares {
		l.spares = append(l.spares, lf.num)
		return
	}
	l.fs.Remove(l.fs.PathJoin(l.dir, logFileName(lf.num))) // a leftover is removed at the next open
}

// read reads the record at p into buf and returns its key and value.
func (l *batchLog) read(p batchPtr, buf []byte) (key, val, out []byte, err error) {
	l.mu.Lock()
	lf := l.files[p.file]
	if lf != nil {
		lf.refs++
	}
	l.mu.Unlock()
	if lf == nil {
		return nil, nil, buf, fmt.Errorf("%w: %s", errLogFileGone, logFileName(p.file))
	}
	if cap(buf) < int(p.size) {
		buf = make([]byte, p.size)
	}
	buf = buf[:p.size]
	_, err = lf.f.ReadAt(buf, p.off)
	l.mu.Lock()
	lf.refs--
	if lf.doomed && lf.refs == 0 {
		l.removeLocked(lf)
	}
	l.mu.Unlock()
	if err != nil {
		return nil, nil, buf, fmt.Errorf("read batch log %s at %d: %w", logFileName(p.file), p.off, err)
	}
	key, val, n, err := parseLogRecord(buf, lf.magic, lf.seed)
	if err != nil || n != len(buf) {
		return nil, nil, buf, fmt.Errorf("%w: batch log %s at %d: %v", ErrCorrupt, logFileName(p.file), p.off, err)
	}
	return key, val, buf, nil
}

// parseLogRecord parses the record at the start of b, of a file whose
// records have magic and CRC seed, and returns its length;
// io.ErrUnexpectedEOF if b ends inside it, errLogEnd at an end record.
func parseLogRecord(b []byte, magic byte, seed uint32) (key, val []byte, n int, err error) {
	if len(b) < logRecordHeader {
		return nil, nil, 0, io.ErrUnexpectedEOF
	}
	if b[0] != magic {
		return nil, nil, 0, fmt.Errorf("record magic %#x", b[0])
	}
	size := int(binary.BigEndian.Uint32(b[1:]))
	if len(b)-logRecordHeader < size {
		return nil, nil, 0, io.ErrUnexpectedEOF
	}
	body := b[logRecordHeader : logRecordHeader+size]
	if crc32.Update(seed, castagnoli, body) != binary.BigEndian.Uint32(b[5:]) {
		return nil, nil, 0, errors.New("record checksum mismatch")
	}
	if size == 0 && magic == logRecordMagic {
		return nil, nil, logRecordHeader, errLogEnd
	}
	kl, w := binary.Uvarint(body)
	if w <= 0 || uint64(len(body)-w) < kl {
		return nil, nil, 0, errors.New("record key length")
	}
	return body[w : w+int(kl)], body[w+int(kl):], logRecordHeader + size, nil
}

// appendLogEnd appends the end record of a file whose records have seed.
func appendLogEnd(dst []byte, seed uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, logRecordMagic, 0, 0, 0, 0), crc32.Update(seed, castagnoli, nil))
}

// scan calls fn with every whole record of the files from (file, off) on,
// in log order, and stops at the first torn or damaged record of a file
// (where a failed commit stopped). It returns how many bytes it skipped so.
func (l *batchLog) scan(file uint64, off int64, fn func(key []byte, p batchPtr) error) (torn int64, err error) {
	l.mu.Lock()
	var nums []uint64
	for n := range l.files {
		if n >= file && (l.active == nil || n != l.active.num) {
			nums = append(nums, n)
		}
	}
	l.mu.Unlock()
	sort.Slice(nums, func(i, k int) bool { return nums[i] < nums[k] })
	for _, n := range nums {
		lf := l.files[n]
		if lf.stale {
			continue
		}
		st, err := lf.f.Stat()
		if err != nil {
			return torn, err
		}
		from := lf.start
		if n == file {
			from = max(from, off)
		}
		if st.Size() <= from {
			continue
		}
		b := make([]byte, st.Size()-from)
		if _, err := lf.f.ReadAt(b, from); err != nil && err != io.EOF {
			return torn, fmt.Errorf("read batch log %s: %w", logFileName(n), err)
		}
		for pos := 0; pos < len(b); {
			key, val, size, err := parseLogRecord(b[pos:], lf.magic, lf.seed)
			if errors.Is(err, errLogEnd) {
				break
			}
			if err != nil {
				torn += int64(len(b) - pos)
				break
			}
			var jb Batch
			if decodeBatchValue(val, &jb) != nil || bytes.IndexByte(key, 0) < 0 {
				torn += int64(len(b) - pos)
				break
			}
			if err := fn(key, batchPtr{file: n, off: from + int64(pos), size: uint32(size), dataLen: uint32(len(jb.Data))}); err != nil {
				return torn, err
			}
			pos += size
		}
	}
	return torn, nil
}

// end writes the active file's end record at a clean close, so that the
// next open's scan stops there without taking a reused file's earlier
// contents for a torn commit. Not synced: without it, the scan stops all
// the same, and says so.
func (l *batchLog) end() {
	if l.active != nil { // always a file of this format: rotate made it
		l.active.f.Write(appendLogEnd(nil, l.active.seed))
	}
}

// close closes every file.
func (l *batchLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lf := range l.files {
		lf.f.Close()
	}
	l.files = map[uint64]*logFile{}
	l.active = nil
}
