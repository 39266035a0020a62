package reliability_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
)

// producerACLs lets a user produce to topic.
func producerACLs(topic string) []kfake.ACL {
	return []kfake.ACL{
		{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationWrite, Allow: true},
		{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true},
		{Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationIdempotentWrite, Allow: true},
	}
}

// TestSecuredClusterThroughProxy: mTLS between clients and the proxy and
// between the proxy and the brokers, SASL (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512) end to end through the proxy, and ACLs on the brokers.
// Clients with valid credentials produce and everything they are
// acknowledged is archived; a wrong password is refused by the broker
// through the proxy; a user without the Write ACL is refused; a client
// without a certificate never gets past the proxy's handshake. Nothing
// the refused clients sent is archived, no password reaches the archive,
// and the archive equals the cluster.
func TestSecuredClusterThroughProxy(t *testing.T) {
	const topic = "secure"
	ca := testkit.NewCA(t)
	c := testkit.NewCluster(t, kfake.SeedTopics(3, topic), kfake.TLS(ca.ServerConfig(t, true)), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-512", "admin", "admin-secret-512"),
		kfake.User("PLAIN", "alice", "alice-secret-plain", producerACLs(topic)...),
		kfake.User("SCRAM-SHA-256", "bob", "bob-secret-256", producerACLs(topic)...),
		kfake.User("PLAIN", "mallory", "mallory-secret", kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic,
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}))
	store := memstore.New()
	n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store,
		ClientTLS: ca.ServerConfig(t, true), UpstreamTLS: ca.ClientConfig(t, true)})

	clientTLS := kgo.DialTLSConfig(ca.ClientConfig(t, true))
	newClient := func(m sasl.Mechanism, extra ...kgo.Opt) *kgo.Client {
		t.Helper()
		opts := append([]kgo.Opt{kgo.SeedBrokers(n.Addr()), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression())}, extra...)
		if m != nil {
			opts = append(opts, kgo.SASL(m))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	produce := func(who string, m sasl.Mechanism, tag string, count int, extra ...kgo.Opt) (*ackLog, error) {
		t.Helper()
		cl := newClient(m, extra...)
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		acks := newAckLog()
		for i := range count {
			r := &kgo.Record{Value: fmt.Appendf(nil, "%s-%s-%d", tag, who, i), Timestamp: time.Now()}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				return acks, err
			}
			acks.add(r)
		}
		return acks, nil
	}
	// refusedClient asks for metadata (the error is the refusal), then
	// tries to produce for half a second.
	refusedClient := func(who string, m sasl.Mechanism, extra ...kgo.Opt) error {
		t.Helper()
		cl := newClient(m, append(extra, kgo.RequestRetries(0))...)
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if m != nil { // the same client straight to the brokers: the same refusal
			dcl := newClient(m, append(extra, kgo.RequestRetries(0), kgo.SeedBrokers(c.ListenAddrs()...))...)
			_, derr := kmsg.NewPtrMetadataRequest().RequestWith(ctx, dcl)
			dcl.Close()
			if fmt.Sprint(derr) != fmt.Sprint(err) {
				t.Errorf("%s: refused with %v through the proxy, %v by the brokers directly", who, err, derr)
			}
		}
		pctx, pcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer pcancel()
		if perr := cl.ProduceSync(pctx, &kgo.Record{Value: fmt.Appendf(nil, "bad-%s", who)}).FirstErr(); perr == nil {
			t.Errorf("%s produced a record", who)
		}
		return err
	}

	good := newAckLog()
	for who, m := range map[string]sasl.Mechanism{
		"alice": plain.Auth{User: "alice", Pass: "alice-secret-plain"}.AsMechanism(),
		"bob":   scram.Auth{User: "bob", Pass: "bob-secret-256"}.AsSha256Mechanism(),
		"admin": scram.Auth{User: "admin", Pass: "admin-secret-512"}.AsSha512Mechanism(),
	} {
		acks, err := produce(who, m, "ok", 50, clientTLS)
		if err != nil {
			t.Fatalf("%s with valid credentials: %v", who, err)
		}
		for k, v := range acks.m {
			good.m[k] = v
		}
	}
	refused := map[string]error{}
	for who, m := range map[string]sasl.Mechanism{
		"alice (wrong password, PLAIN)":       plain.Auth{User: "alice", Pass: "guess-1"}.AsMechanism(),
		"bob (wrong password, SCRAM-SHA-256)": scram.Auth{User: "bob", Pass: "guess-2"}.AsSha256Mechanism(),
		"eve (unknown user, SCRAM-SHA-512)":   scram.Auth{User: "eve", Pass: "guess-3"}.AsSha512Mechanism(),
	} {
		// kfake closes the connection on a failed authentication
		// (Kafka answers SASL_AUTHENTICATION_FAILED first): EOF.
		err := refusedClient(strings.Fields(who)[0], m, clientTLS)
		if err == nil {
			t.Errorf("%s got through", who)
		}
		refused[who] = err
	}
	_, err := produce("mallory", plain.Auth{User: "mallory", Pass: "mallory-secret"}.AsMechanism(), "denied", 1, clientTLS, kgo.DisableIdempotentWrite())
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("mallory without the Write ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	refused["mallory (no Write ACL)"] = err
	err = refusedClient("nocert", nil, kgo.DialTLSConfig(ca.ClientConfig(t, false)))
	if err == nil {
		t.Error("a client without a certificate got through the proxy")
	}
	refused["alice without a client certificate"] = err
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}

	// Nothing a refused client sent is archived; no secret is in any
	// object.
	a, err := archive.OpenArchive(testCtx(t, time.Minute), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		err := a.ReadPartition(testCtx(t, time.Minute), topic, p, func(b *archive.Batch) error {
			h, err := protocol.ParseBatchHeader(b.Data)
			if err != nil {
				return err
			}
			recs, err := protocol.DecodeRecords(b.Data, &h, b.BaseOffset, archive.Codec())
			if err != nil {
				return err
			}
			for _, r := range recs {
				if !bytes.HasPrefix(r.Value, []byte("ok-")) {
					t.Errorf("%s/%d@%d: %q is archived: a refused client's record", topic, p, r.Offset, r.Value)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	scanned := 0
	store.List(testCtx(t, time.Minute), "", func(o archive.ObjectInfo) error {
		rc, err := store.Get(testCtx(t, time.Minute), o.Key)
		if err != nil {
			return err
		}
		defer rc.Close()
		raw, _ := io.ReadAll(rc)
		scanned++
		for _, secret := range []string{"alice-secret-plain", "bob-secret-256", "admin-secret-512", "mallory-secret", "guess-", "denied-", "bad-"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s contains %q", o.Key, secret)
			}
		}
		return nil
	})
	ts := n.tee.Stats()
	for who, err := range refused {
		t.Logf("refused: %s: %v", who, err)
	}
	t.Logf("RESULT secured cluster: %d records acknowledged to alice (PLAIN), bob (SCRAM-SHA-256) and admin (SCRAM-SHA-512) over mTLS; %d clients refused; tee counted %d batches the broker refused; %d objects scanned for secrets",
		good.len(), len(refused), ts.FailedBatches, scanned)
	if ts.FailedBatches == 0 {
		t.Error("the tee counted no refused batch: mallory's produce never reached the broker")
	}
	checkArchive(t, check{Store: store, Cluster: c.ListenAddrs(), Topics: []string{topic}, MustHold: good,
		ClientOpts: []kgo.Opt{clientTLS, kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret-512"}.AsSha512Mechanism())}})
}

// TestEncryptedObjectsInBucket reads an encrypted archive's objects
// straight from the MinIO bucket: no record value and no topic name is in
// them, while the same records archived without a key are (the control
// that shows the scan would see them). Without the key the archive does
// not open and names the key id; with it, it equals the cluster.
func TestEncryptedObjectsInBucket(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "enc", false)
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "payroll"))
	key, err := archive.NewKey(bytes.Repeat([]byte{0x5a}, 32))
	if err != nil {
		t.Fatal(err)
	}
	scan := func(store archive.Store) (objects, withPlaintext int) {
		store.List(testCtx(t, time.Minute), "", func(o archive.ObjectInfo) error {
			rc, err := store.Get(testCtx(t, time.Minute), o.Key)
			if err != nil {
				return err
			}
			defer rc.Close()
			raw, _ := io.ReadAll(rc)
			objects++
			if bytes.Contains(raw, []byte("salary-of-")) || bytes.Contains(raw, []byte("payroll")) {
				withPlaintext++
			}
			return nil
		})
		return objects, withPlaintext
	}
	var sealedAcks *ackLog
	for _, k := range []*archive.Key{nil, key} {
		prefix := "plain"
		if k != nil {
			prefix = "sealed"
		}
		store := s3StoreAt(t, m, m.Endpoint, "enc", prefix)
		n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store, Key: k})
		s := startStream(t, []string{n.Addr()}, "payroll", "salary-of-"+prefix, 8, kgo.ProducerBatchCompression(kgo.NoCompression()))
		s.waitAcks(t, 200, 30*time.Second)
		s.finish()
		if err := n.stop(); err != nil {
			t.Fatal(err)
		}
		if k != nil {
			sealedAcks = s.acks
		}
		objects, plain := scan(store)
		switch {
		case k == nil && plain == 0:
			t.Fatalf("control: none of %d unencrypted objects holds a value or the topic name: the scan sees nothing", objects)
		case k != nil && plain > 0:
			t.Errorf("%d of %d encrypted objects hold a value or the topic name in the clear", plain, objects)
		}
		t.Logf("%s: %d objects, %d with plaintext", prefix, objects, plain)
	}
	sealed := s3StoreAt(t, m, m.Endpoint, "enc", "sealed")
	if _, err := archive.OpenArchive(testCtx(t, time.Minute), sealed, nil); !errors.Is(err, archive.ErrWrongKey) || !strings.Contains(err.Error(), key.ID()) {
		t.Errorf("open without the key: %v, want ErrWrongKey naming %s", err, key.ID())
	}
	t.Logf("RESULT encryption: objects read from the bucket hold no value or topic name (the unencrypted control does); without the key: refused naming key %s", key.ID())
	// The sealed archive lacks the records the first run put under "plain":
	// the backfill fetches them, and everything acknowledged in the sealed
	// run must be there before it.
	checkArchive(t, check{Store: sealed, Key: key, Cluster: c.ListenAddrs(), Topics: []string{"payroll"}, MustHold: sealedAcks, Backfill: true})
}
