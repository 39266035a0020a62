//go:build unix

package export

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on an export directory for one run, so
// that two runs never race for the same run number. The lock is on the
// directory itself: no lock file, which verify would see as extra.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: another amber export is writing into it (%v): wait for it to finish", dir, err)
	}
	return func() { f.Close() }, nil
}
