package proxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/amber-kafka/amber/internal/kafkatest"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/proxy"
)

// roundTrip produces and consumes one record with a client made of opts,
// giving up after wait.
func roundTrip(t *testing.T, wait time.Duration, opts ...kgo.Opt) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("secret-free")}).FirstErr(); err != nil {
		return err
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		return err
	}
	if fs.NumRecords() == 0 {
		t.Fatal("consumed nothing")
	}
	return nil
}

// TestTLSBothSidesWithMTLS: clients speak mTLS to the proxy, the proxy
// speaks mTLS to the brokers. A client without a certificate is refused,
// and a plaintext client is closed with a log line saying why.
func TestTLSBothSidesWithMTLS(t *testing.T) {
	ca := testkit.NewCA(t)
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "t"), kfake.TLS(ca.ServerConfig(t, true)))
	logs := testkit.ObservedLogger(t)
	p := testkit.StartProxy(t, proxy.Options{
		Upstreams:   c.ListenAddrs(),
		ClientTLS:   ca.ServerConfig(t, true),
		UpstreamTLS: ca.ClientConfig(t, true),
		Logger:      logs.Logger,
	})
	if err := roundTrip(t, 5*time.Second, kgo.SeedBrokers(p.Addr()), kgo.DialTLSConfig(ca.ClientConfig(t, true))); err != nil {
		t.Fatalf("mTLS client through mTLS proxy: %v", err)
	}
	if err := roundTrip(t, time.Second, kgo.SeedBrokers(p.Addr()), kgo.DialTLSConfig(ca.ClientConfig(t, false)), kgo.RequestRetries(0)); err == nil {
		t.Fatal("a client without a certificate got through")
	}
	logs.WaitFor(t, "TLS handshake failed")
	if err := roundTrip(t, time.Second, kgo.SeedBrokers(p.Addr()), kgo.RequestRetries(0)); err == nil {
		t.Fatal("a plaintext client got through a TLS listener")
	}
	logs.WaitFor(t, "plaintext to a TLS listener")
}

// TestSASLPassesThrough: SASL PLAIN and SCRAM run end to end between
// client and broker; the proxy only forwards. Wrong credentials are refused
// by the broker, through the proxy.
func TestSASLPassesThrough(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "t"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plain-user", "plain-pass"),
		kfake.Superuser("SCRAM-SHA-256", "scram256", "pass256"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "pass512"))
	p := testkit.StartProxy(t, proxy.Options{Upstreams: c.ListenAddrs()})
	good := map[string]sasl.Mechanism{
		"PLAIN":         plain.Auth{User: "plain-user", Pass: "plain-pass"}.AsMechanism(),
		"SCRAM-SHA-256": scram.Auth{User: "scram256", Pass: "pass256"}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: "scram512", Pass: "pass512"}.AsSha512Mechanism(),
	}
	for name, m := range good {
		if err := roundTrip(t, 5*time.Second, kgo.SeedBrokers(p.Addr()), kgo.SASL(m)); err != nil {
			t.Errorf("%s through the proxy: %v", name, err)
		}
	}
	bad := map[string]sasl.Mechanism{
		"PLAIN":         plain.Auth{User: "plain-user", Pass: "wrong"}.AsMechanism(),
		"SCRAM-SHA-256": scram.Auth{User: "scram256", Pass: "wrong"}.AsSha256Mechanism(),
	}
	for name, m := range bad {
		if err := roundTrip(t, time.Second, kgo.SeedBrokers(p.Addr()), kgo.SASL(m), kgo.RequestRetries(0)); err == nil {
			t.Errorf("%s with a wrong password got through", name)
		}
	}
}

// TestSASLv0BareTokens: after SaslHandshake v0 (brokers before KIP-152),
// the client sends its SASL token in a bare frame with no Kafka header and
// gets a bare frame back. The proxy must forward both untouched and then
// return to Kafka framing. kfake has no v0, so a stand-in broker plays the
// old broker's part and relays the rest to kfake.
func TestSASLv0BareTokens(t *testing.T) {
	c := testkit.NewCluster(t)
	fb := startFutureBrokerWith(t, &futureBroker{upstream: c.ListenAddrs()[0], saslV0: true})
	p := testkit.StartProxy(t, proxy.Options{Upstreams: []string{fb.Addr()}})
	conn, err := kafkatest.DialRaw(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(0)
	hs.Mechanism = "PLAIN"
	r, err := conn.Request(hs)
	if err != nil {
		t.Fatalf("handshake v0: %v", err)
	}
	if code := r.(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
		t.Fatalf("handshake error %d", code)
	}
	if _, err := conn.Write(sized([]byte("\x00user\x00pass"))); err != nil {
		t.Fatal(err)
	}
	if frame, err := conn.ReadFrame(); err != nil || len(frame) != 0 {
		t.Fatalf("bare token response: %q, %v", frame, err)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(9)
	mr, err := conn.Request(meta)
	if err != nil {
		t.Fatalf("metadata after SASL v0: %v", err)
	}
	real := map[string]bool{}
	for _, a := range c.ListenAddrs() {
		real[a] = true
	}
	for _, b := range mr.(*kmsg.MetadataResponse).Brokers {
		if a := (kafkatest.Addr{Host: b.Host, Port: b.Port}).String(); real[a] {
			t.Errorf("real address %s after SASL v0", a)
		}
	}
}
