// Package reliability holds no code: its tests show what Amber promises
// under failure, bad input and load, each ending with the check that
// nothing acknowledged was lost and that the archive equals the cluster
// (docs/RELIABILITY.md lists them with the results of real runs).
//
// The tests run real components: kfake clusters, the proxy with its tee,
// journal and uploader wired as `amber proxy` wires them, a real MinIO, a
// tmpfs journal disk. Faults are injected where they happen in production:
// a TCP relay between proxy and brokers, an HTTP proxy in front of MinIO,
// Pebble's errorfs under the journal. Tests that need the amber binary
// (kill -9, load, logs) are in cmd/amber/reliability_test.go.
package reliability
