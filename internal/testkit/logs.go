package testkit

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// Logs is a logger whose entries a test can inspect; it also writes
// warnings and errors to the test log.
type Logs struct {
	Logger *zap.Logger
	obs    *observer.ObservedLogs
}

// ObservedLogger returns a logger that records every entry at debug level
// and above.
func ObservedLogger(t testing.TB) *Logs {
	core, obs := observer.New(zapcore.DebugLevel)
	tl := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	return &Logs{Logger: zap.New(zapcore.NewTee(core, tl.Core())), obs: obs}
}

// Find returns the entries whose message or any string field contains s.
func (l *Logs) Find(s string) []observer.LoggedEntry {
	var out []observer.LoggedEntry
	for _, e := range l.obs.All() {
		if strings.Contains(e.Message, s) {
			out = append(out, e)
			continue
		}
		for k, v := range e.ContextMap() {
			if str, ok := v.(string); ok && strings.Contains(str, s) || k == s {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// WaitFor waits up to 10 s for an entry containing s and returns it.
func (l *Logs) WaitFor(t testing.TB, s string) observer.LoggedEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if es := l.Find(s); len(es) > 0 {
			return es[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log entry containing %q; have %d entries", s, len(l.obs.All()))
	return observer.LoggedEntry{}
}
