package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress draws a one-line progress bar with a count (or bytes), rate and
// ETA on a terminal, redrawn at most ten times a second; on anything else
// (CI, a pipe) it prints one line at the end only.
type progress struct {
	w       io.Writer
	label   string
	total   int64
	bytes   bool
	start   time.Time
	tty     bool
	mu      sync.Mutex
	cur     int64
	lastDrw time.Time
}

func newProgress(w io.Writer, label string, total int64, bytes bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, label: label, total: total, bytes: bytes, start: time.Now(), tty: tty}
}

func (p *progress) fmtN(n int64) string {
	if p.bytes {
		return humanBytes(n)
	}
	return fmt.Sprint(n)
}

// Add advances by n.
func (p *progress) Add(n int64) { p.mu.Lock(); p.cur += n; p.drawLocked(false); p.mu.Unlock() }

// Set moves to n.
func (p *progress) Set(n int64) { p.mu.Lock(); p.cur = n; p.drawLocked(false); p.mu.Unlock() }

// Done draws the final state and ends the line.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawLocked(true)
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) drawLocked(final bool) {
	if !p.tty && !final {
		return
	}
	if !final && time.Since(p.lastDrw) < 100*time.Millisecond {
		return
	}
	p.lastDrw = time.Now()
	el := time.Since(p.start)
	rate := float64(p.cur) / max(el.Seconds(), 1e-3)
	line := fmt.Sprintf("%s %s", p.label, p.fmtN(p.cur))
	if p.total > 0 {
		frac := min(float64(p.cur)/float64(p.total), 1)
		const width = 30
		bar := strings.Repeat("█", int(frac*width)) + strings.Repeat("░", width-int(frac*width))
		line = fmt.Sprintf("%s [%s] %5.1f%% %s/%s", p.label, bar, frac*100, p.fmtN(p.cur), p.fmtN(p.total))
		if rate > 0 && p.cur < p.total && !final {
			line += fmt.Sprintf(" ETA %s", time.Duration(float64(p.total-p.cur)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	if p.bytes {
		line += fmt.Sprintf(" %s/s", humanBytes(int64(rate)))
	}
	if final {
		line += fmt.Sprintf(" in %s", el.Round(time.Millisecond))
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}
