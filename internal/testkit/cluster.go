// Package testkit holds the test infrastructure shared by Amber's tests:
// in-process kfake clusters, the proxy started in front of them, and runners
// for the non-Go client libraries (kcat, kafka-python, confluent-kafka-python,
// KafkaJS).
package testkit

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// NewCluster starts an in-process kfake cluster with three brokers (unless
// opts set another count) on 127.0.0.1 and closes it when the test ends.
func NewCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	all := append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("start kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Proxied is a kfake cluster with an Amber proxy in front of it.
type Proxied struct {
	Cluster *kfake.Cluster
	// Bootstrap is the address clients dial: the proxy's listen address.
	Bootstrap string
}

// ProxiedCluster starts a 3-broker kfake cluster (plus opts) and an Amber
// proxy in front of it; both stop when the test ends.
func ProxiedCluster(t testing.TB, opts ...kfake.Opt) *Proxied {
	t.Helper()
	c := NewCluster(t, opts...)
	// TODO(proxy): replaced by the real proxy as soon as it lands.
	return &Proxied{Cluster: c, Bootstrap: c.ListenAddrs()[0]}
}
