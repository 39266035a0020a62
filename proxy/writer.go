package proxy

import (
	"io"
	"net"
)

// frameWriter buffers the frames going out on one socket. Like the socket's
// write side, it belongs to one goroutine.
//
// A frame that fits in what is left of the buffer is copied in and leaves
// with the others on flush, so a pipelined burst of small requests or
// responses costs one write(2). A frame that does not fit is not copied: it
// leaves at once, behind whatever the buffer holds, in one writev(2).
// bufio.Writer would copy the first 64 KiB of it into the buffer, write
// that, then write the rest: two system calls and two wake-ups of the peer
// per large frame, which in the benchmark profile cost more than the copy.
type frameWriter struct {
	w   io.Writer // the socket
	buf []byte    // frames waiting for flush; cap is the buffer size
	err error     // the first write error; every later call returns it

	// Scratch for writev, kept here so that a write does not allocate.
	vec  [3][]byte
	bufs net.Buffers
}

func newFrameWriter(w io.Writer, size int) *frameWriter {
	return &frameWriter{w: w, buf: make([]byte, 0, size)}
}

// write queues hdr followed by body (a size prefix and a frame, usually).
// Neither is referenced once write returns, so the caller may reuse them.
func (w *frameWriter) write(hdr, body []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(hdr)+len(body) <= cap(w.buf)-len(w.buf) {
		w.buf = append(w.buf, hdr...)
		w.buf = append(w.buf, body...)
		return nil
	}
	// net.Buffers.WriteTo is one writev on a *net.TCPConn, and a Write
	// per slice on anything else (TLS).
	w.vec = [3][]byte{w.buf, hdr, body}
	w.bufs = w.vec[:]
	_, w.err = w.bufs.WriteTo(w.w)
	w.vec = [3][]byte{} // let the caller's buffers go
	w.buf = w.buf[:0]
	return w.err
}

// flush writes what is buffered.
func (w *frameWriter) flush() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	_, w.err = w.w.Write(w.buf)
	w.buf = w.buf[:0]
	return w.err
}
