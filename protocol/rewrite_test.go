package protocol_test

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/kafkatest"
	"github.com/amber-kafka/amber/protocol"
)

// notBrokerAddrs are responses whose Host/Port fields are not broker
// addresses: Kafka Streams application endpoints, which clients publish for
// each other and the proxy must leave alone.
var notBrokerAddrs = map[int16]string{
	88: "StreamsGroupHeartbeat: application endpoints",
	89: "StreamsGroupDescribe: application endpoints",
}

// TestAddressKeysComplete fails when kmsg knows a response that can carry a
// broker address which the proxy does not rewrite: a new Kafka release that
// adds one must be added to the rewrite table.
func TestAddressKeysComplete(t *testing.T) {
	for key := int16(0); key < 1024; key++ {
		resp := kmsg.ResponseForKey(key)
		if resp == nil {
			continue
		}
		has := kafkatest.ContainsAddr(reflect.TypeOf(resp))
		if why, ok := notBrokerAddrs[key]; ok {
			if protocol.AddressKey(key) {
				t.Errorf("%s (key %d) is rewritten but holds no broker address: %s", kmsg.NameForKey(key), key, why)
			}
			continue
		}
		if has != protocol.AddressKey(key) {
			t.Errorf("%s (key %d): carries addresses %v, rewritten %v", kmsg.NameForKey(key), key, has, protocol.AddressKey(key))
		}
	}
}

type mapAll struct{}

func (mapAll) MapAddr(node int32, host string, port int32) (string, int32, error) {
	return "proxy", 10000 + node, nil
}

// TestRewriteAddressesEveryVersion fills every address of every rewritten
// response at every version kmsg knows, round-trips it through the wire
// encoding, rewrites it, and checks no original address survives.
func TestRewriteAddressesEveryVersion(t *testing.T) {
	real := []kafkatest.Addr{{Host: "broker-a", Port: 9092}, {Host: "broker-b", Port: 9093}, {Host: "broker-c", Port: 9094}}
	for _, key := range protocol.AddressKeys() {
		for v := int16(0); v <= protocol.MaxVersion(key); v++ {
			if !protocol.CarriesAddresses(key, v) {
				continue
			}
			resp := kmsg.ResponseForKey(key)
			resp.SetVersion(v)
			kafkatest.Fill(resp, real, 0)
			wire := resp.AppendTo(nil)
			got := kmsg.ResponseForKey(key)
			got.SetVersion(v)
			if err := got.ReadFrom(wire); err != nil {
				t.Fatalf("%s v%d: decode: %v", kmsg.NameForKey(key), v, err)
			}
			before := kafkatest.Collect(got)
			if len(before) == 0 {
				t.Errorf("%s v%d: no address survives encoding, but the version is marked as carrying addresses", kmsg.NameForKey(key), v)
				continue
			}
			changed, err := protocol.RewriteAddresses(got, mapAll{})
			if err != nil || !changed {
				t.Fatalf("%s v%d: rewrite: changed=%v err=%v", kmsg.NameForKey(key), v, changed, err)
			}
			for _, a := range kafkatest.Collect(got) {
				if a.Host != "proxy" {
					t.Errorf("%s v%d: address %s not rewritten", kmsg.NameForKey(key), v, a)
				}
			}
		}
	}
}
