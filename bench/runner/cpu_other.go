//go:build !unix

package runner

import "time"

// ProcessCPU is not measured off Unix: CPU per GB then reads 0.
func ProcessCPU() time.Duration { return 0 }
