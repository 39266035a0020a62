package proxy

import (
	"bytes"
	"errors"
	"testing"
)

// countWriter records each Write.
type countWriter struct {
	bytes.Buffer
	writes int
	err    error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.writes++
	return c.Buffer.Write(p)
}

func TestFrameWriter(t *testing.T) {
	var cw countWriter
	w := newFrameWriter(&cw, 16)
	w.write([]byte("ab"), []byte("cd"))
	w.write([]byte("ef"), nil)
	if cw.writes != 0 {
		t.Fatalf("small frames written before flush: %d writes", cw.writes)
	}
	// Does not fit: goes out now, behind what is buffered, uncopied.
	big := bytes.Repeat([]byte("x"), 20)
	if err := w.write([]byte("GH"), big); err != nil {
		t.Fatal(err)
	}
	big[0] = 'y' // the caller may reuse it at once
	if want := "abcdefGH" + string(bytes.Repeat([]byte("x"), 20)); cw.String() != want {
		t.Fatalf("wrote %q, want %q", cw.String(), want)
	}
	w.write([]byte("ij"), nil)
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil || cw.writes == 0 {
		t.Fatal("empty flush:", err)
	}
	if got := cw.String()[len(cw.String())-2:]; got != "ij" {
		t.Fatalf("flushed %q, want ij", got)
	}

	// The first error sticks.
	cw.err = errors.New("broken pipe")
	w.write([]byte("kl"), nil)
	if err := w.flush(); !errors.Is(err, cw.err) {
		t.Fatalf("flush: %v, want %v", err, cw.err)
	}
	cw.err = nil
	if err := w.write(big, nil); err == nil {
		t.Fatal("write after an error succeeded")
	}
}
