package archivebench

import (
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// stallCounter is a zap core that counts the journal's write-stall
// warnings ("journal write stall: the disk is not keeping up", logged on
// Pebble's WriteStallBegin: memtables full while a flush runs, or too many
// L0 files). It writes nothing.
type stallCounter struct{ n atomic.Int64 }

// count returns logger with the counter attached.
func (s *stallCounter) wrap(logger *zap.Logger) *zap.Logger {
	return logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, s) }))
}

// load is the number of stalls so far; 0 for a nil counter.
func (s *stallCounter) load() int64 {
	if s == nil {
		return 0
	}
	return s.n.Load()
}

func (s *stallCounter) Enabled(l zapcore.Level) bool      { return l >= zapcore.WarnLevel }
func (s *stallCounter) With([]zapcore.Field) zapcore.Core { return s }
func (s *stallCounter) Sync() error                       { return nil }
func (s *stallCounter) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if s.Enabled(e.Level) && strings.Contains(e.Message, "write stall") {
		return ce.AddCore(e, s)
	}
	return ce
}
func (s *stallCounter) Write(zapcore.Entry, []zapcore.Field) error {
	s.n.Add(1)
	return nil
}
