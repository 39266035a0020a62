//go:build !unix

package restorebench

import "time"

// processCPU is not measured off Unix: CPU per GB then reads 0.
func processCPU() time.Duration { return 0 }
