package protocol

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddrMapper maps a broker address found in a response to the address the
// client must see instead. It is called once per address-bearing entry;
// nodeID is the entry's node id (-1 where the entry has none).
type AddrMapper interface {
	MapAddr(nodeID int32, host string, port int32) (string, int32, error)
}

// Address-bearing API keys and the first version whose responses can carry
// an address on the wire. NodeEndpoints (KIP-951 in Produce and Fetch, and
// the quorum APIs) are tagged fields, present only when a leader moved.
// Apache Kafka writes them in Produce from v10 and Fetch from v16, but kmsg
// writes and reads a tagged field at every flexible version, so a broker
// built on it (kfake is) sends them from Produce v9 and Fetch v12, and a
// client built on it (franz-go) uses them there. The table follows the
// wire, not the spec. (Vote and FetchSnapshot v0 are flexible too, but
// their endpoints' fields start at v1 in kmsg as well.)
var addrFrom = map[int16]int16{
	0:  9,  // Produce: NodeEndpoints
	1:  12, // Fetch: NodeEndpoints
	3:  0,  // Metadata: Brokers
	10: 0,  // FindCoordinator: Host/Port (v0-3), Coordinators (v4+)
	52: 1,  // Vote: NodeEndpoints (controller quorum)
	53: 1,  // BeginQuorumEpoch: NodeEndpoints
	54: 1,  // EndQuorumEpoch: NodeEndpoints
	55: 2,  // DescribeQuorum: Nodes[].Listeners
	59: 1,  // FetchSnapshot: NodeEndpoints
	60: 0,  // DescribeCluster: Brokers
	78: 0,  // ShareFetch: NodeEndpoints
	79: 0,  // ShareAcknowledge: NodeEndpoints
	82: 0,  // UpdateRaftVoter: CurrentLeader
}

// AddressKeys returns the API keys whose responses can carry a broker
// address, for tests and for ApiVersions capping.
func AddressKeys() []int16 {
	out := make([]int16, 0, len(addrFrom))
	for k := range addrFrom {
		out = append(out, k)
	}
	return out
}

// AddressKey reports whether responses to key carry broker addresses at
// some version.
func AddressKey(key int16) bool {
	_, ok := addrFrom[key]
	return ok
}

// CarriesAddresses reports whether a response to key at version can carry a
// broker address, and so must be decoded and rewritten.
func CarriesAddresses(key, version int16) bool {
	from, ok := addrFrom[key]
	return ok && version >= from
}

// RewriteAddresses replaces every broker address in resp through m. It
// reports whether anything changed: most Produce and Fetch responses carry
// no NodeEndpoints, and those are forwarded as the broker sent them.
func RewriteAddresses(resp kmsg.Response, m AddrMapper) (bool, error) {
	var (
		changed bool
		err     error
	)
	// one rewrites one address and records the first error.
	// An empty host (an error entry: node -1, port -1) names nothing and
	// is left alone; every other address is rewritten, error or not.
	one := func(node int32, host *string, port *int32) {
		if err != nil || *host == "" {
			return
		}
		h, p, e := m.MapAddr(node, *host, *port)
		if e != nil {
			err = fmt.Errorf("map node %d at %s:%d: %w", node, *host, *port, e)
			return
		}
		*host, *port, changed = h, p, true
	}
	one16 := func(node int32, host *string, port *uint16) {
		p := int32(*port)
		one(node, host, &p)
		*port = uint16(p)
	}
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for i := range r.Brokers {
			b := &r.Brokers[i]
			one(b.NodeID, &b.Host, &b.Port)
		}
	case *kmsg.FetchResponse:
		for i := range r.Brokers {
			b := &r.Brokers[i]
			one(b.NodeID, &b.Host, &b.Port)
		}
	case *kmsg.MetadataResponse:
		for i := range r.Brokers {
			b := &r.Brokers[i]
			one(b.NodeID, &b.Host, &b.Port)
		}
	case *kmsg.FindCoordinatorResponse:
		if r.Version < 4 {
			one(r.NodeID, &r.Host, &r.Port)
		}
		for i := range r.Coordinators {
			c := &r.Coordinators[i]
			one(c.NodeID, &c.Host, &c.Port)
		}
	case *kmsg.VoteResponse:
		for i := range r.NodeEndpoints {
			e := &r.NodeEndpoints[i]
			one16(e.NodeID, &e.Host, &e.Port)
		}
	case *kmsg.BeginQuorumEpochResponse:
		for i := range r.NodeEndpoints {
			e := &r.NodeEndpoints[i]
			one16(e.NodeID, &e.Host, &e.Port)
		}
	case *kmsg.EndQuorumEpochResponse:
		for i := range r.NodeEndpoints {
			e := &r.NodeEndpoints[i]
			one16(e.NodeID, &e.Host, &e.Port)
		}
	case *kmsg.DescribeQuorumResponse:
		for i := range r.Nodes {
			n := &r.Nodes[i]
			for j := range n.Listeners {
				l := &n.Listeners[j]
				one16(n.NodeID, &l.Host, &l.Port)
			}
		}
	case *kmsg.FetchSnapshotResponse:
		for i := range r.NodeEndpoints {
			e := &r.NodeEndpoints[i]
			one16(e.NodeID, &e.Host, &e.Port)
		}
	case *kmsg.DescribeClusterResponse:
		for i := range r.Brokers {
			b := &r.Brokers[i]
			one(b.NodeID, &b.Host, &b.Port)
		}
	case *kmsg.ShareFetchResponse:
		for i := range r.NodeEndpoints {
			e := &r.NodeEndpoints[i]
			one(e.NodeID, &e.Host, &e.Port)
		}
	case *kmsg.ShareAcknowledgeResponse:
		for i := range r.NodeEndpoints {
			e := &r.NodeEndpoints[i]
			one(e.NodeID, &e.Host, &e.Port)
		}
	case *kmsg.UpdateRaftVoterResponse:
		l := &r.CurrentLeader
		one(l.LeaderID, &l.Host, &l.Port)
	}
	return changed, err
}
