package archivebench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/amber-kafka/amber/bench/runner"
)

// medianOf is the median of value over runs.
func medianOf[T any](runs []T, value func(T) float64) float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = value(r)
	}
	return runner.Median(xs)
}

// pairedRatio is the median over rounds of value(a[i]) / value(b[i]):
// each ratio compares two runs made back to back in the same round, so
// drift of the machine between rounds cancels out.
func pairedRatio[T any](a, b []T, value func(T) float64) float64 {
	n := min(len(a), len(b))
	xs := make([]float64, 0, n)
	for i := range n {
		xs = append(xs, value(a[i])/value(b[i]))
	}
	return runner.Median(xs)
}

// perGB is x per GB (10⁹ bytes) of bytes.
func perGB(x float64, bytes int64) float64 {
	if bytes <= 0 {
		return math.NaN()
	}
	return x / (float64(bytes) / 1e9)
}

// mbps is bytes over d in MB (10⁶ bytes) per second.
func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

// userHZ is the unit of the CPU times in /proc/PID/stat: 100 on every
// Linux configuration that matters.
const userHZ = 100

// pidCPU is the CPU time, user and system, that process pid has used so
// far, read from /proc (Linux only; 0 elsewhere or on error). It measures
// the MinIO server, a separate process.
func pidCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// fields from 3 on follow the last ')'. utime and stime are fields 14
	// and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / userHZ
}
