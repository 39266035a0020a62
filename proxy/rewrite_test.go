package proxy_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/kafkatest"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
)

// TestNoRealAddressLeaks sends every address-bearing request at every
// version kmsg knows through the proxy. The cluster answers each with every
// address field filled with the real brokers' addresses (kfake ControlKey,
// so that even fields kfake never fills, such as KIP-951 NodeEndpoints or
// DescribeQuorum listeners, are present). Every address the client sees
// must be one of the proxy's own listeners.
func TestNoRealAddressLeaks(t *testing.T) {
	pc := testkit.ProxiedCluster(t)
	var real []kafkatest.Addr
	realSet := map[string]bool{}
	for _, a := range pc.Cluster.ListenAddrs() {
		h, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		real = append(real, kafkatest.Addr{Host: h, Port: int32(port)})
		realSet[a] = true
	}
	for _, key := range protocol.AddressKeys() {
		pc.Cluster.ControlKey(key, func(req kmsg.Request) (kmsg.Response, error, bool) {
			pc.Cluster.KeepControl()
			resp := req.ResponseKind()
			resp.SetVersion(req.GetVersion())
			kafkatest.Fill(resp, real, 0)
			return resp, nil, true
		})
	}
	c, err := kafkatest.DialRaw(pc.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checked := 0
	for _, key := range protocol.AddressKeys() {
		for v := int16(0); v <= protocol.MaxVersion(key); v++ {
			if !protocol.CarriesAddresses(key, v) {
				continue
			}
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			if pr, ok := req.(*kmsg.ProduceRequest); ok {
				pr.Acks = -1
			}
			resp, err := c.Request(req)
			if err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
			}
			advertised := map[string]bool{}
			for _, b := range pc.Proxy.Brokers() {
				advertised[b.Advertised] = true
			}
			addrs := kafkatest.Collect(resp)
			if len(addrs) == 0 {
				t.Errorf("%s v%d: the response carried no address, so nothing was checked", kmsg.NameForKey(key), v)
			}
			for _, a := range addrs {
				if realSet[a.String()] {
					t.Errorf("%s v%d: real broker address %s reached the client", kmsg.NameForKey(key), v, a)
				} else if !advertised[a.String()] {
					t.Errorf("%s v%d: address %s is not a proxy listener (have %v)", kmsg.NameForKey(key), v, a, advertised)
				}
			}
			checked++
		}
	}
	t.Logf("checked %d key/version pairs", checked)
}
