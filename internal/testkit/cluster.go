// Package testkit holds the test infrastructure shared by Amber's tests:
// in-process kfake clusters, the proxy started in front of them, and runners
// for the non-Go client libraries (kcat, kafka-python, confluent-kafka-python,
// KafkaJS).
package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/amber-kafka/amber/proxy"
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
	Proxy   *proxy.Proxy
	// Bootstrap is the address clients dial: the proxy's listen address.
	Bootstrap string
}

// ProxiedCluster starts a 3-broker kfake cluster (plus opts) and an Amber
// proxy in front of it; both stop when the test ends.
func ProxiedCluster(t testing.TB, opts ...kfake.Opt) *Proxied {
	t.Helper()
	c := NewCluster(t, opts...)
	p := StartProxy(t, proxy.Options{Upstreams: c.ListenAddrs()})
	return &Proxied{Cluster: c, Proxy: p, Bootstrap: p.Addr()}
}

// StartProxy starts a proxy with opts on 127.0.0.1 (an ephemeral port
// unless opts.Listen says otherwise), logging warnings and errors to the
// test log, and drains it when the test ends.
func StartProxy(t testing.TB, opts proxy.Options) *proxy.Proxy {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	p, err := proxy.New(opts)
	if err != nil {
		t.Fatalf("new proxy: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
	})
	return p
}

// RecreateTopic deletes topic through cl and creates it again with one
// partition, as an operator does by mistake: the cluster gives the new
// topic a new id, and its offsets start over.
func RecreateTopic(t testing.TB, cl *kgo.Client, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatalf("delete topic %s: %v", topic, err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create topic %s again: %v", topic, err)
	}
}
