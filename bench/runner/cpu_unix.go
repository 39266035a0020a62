//go:build unix

package runner

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time, user and system, that every thread of the
// process has used so far; 0 if the kernel will not say.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
