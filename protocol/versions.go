package protocol

import "github.com/twmb/franz-go/pkg/kmsg"

// CapVersions lowers, in an ApiVersions response, the maximum version of
// every key for which limit reports a cap to that cap, so that a client
// never sends Amber a version it must decode but cannot, or one whose
// responses it chose not to decode (see FetchNoNodeEndpoints). Keys limit
// does not cap keep the broker's versions, including keys kmsg has never
// heard of. A key whose broker range lies wholly above its cap is removed.
// It reports whether anything changed.
//
// Produce is also advertised from v0 when the broker's range starts at v3
// or below (brokers that removed v0-v2 under KIP-896): librdkafka before
// 2.10 only compresses with gzip, snappy or lz4 when the broker lists
// Produce v0, and otherwise sends those batches uncompressed. Apache Kafka
// 4.0 advertises v0 for the same reason (KAFKA-18659) and rejects the
// versions it removed, which the broker behind the proxy still does.
func CapVersions(resp *kmsg.ApiVersionsResponse, limit func(key int16) (max int16, capped bool)) bool {
	changed := false
	kept := resp.ApiKeys[:0]
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 0 && k.MinVersion > 0 && k.MinVersion <= 3 {
			k.MinVersion = 0
			changed = true
		}
		if max, capped := limit(k.ApiKey); capped {
			if k.MinVersion > max {
				changed = true
				continue
			}
			if k.MaxVersion > max {
				k.MaxVersion = max
				changed = true
			}
		}
		kept = append(kept, k)
	}
	resp.ApiKeys = kept
	return changed
}

// FetchNoNodeEndpoints is the last Fetch version in which Apache Kafka
// writes no KIP-951 NodeEndpoints (broker addresses). v16 added them and
// nothing else a client uses (v17 and v18 add broker-to-broker fields), so
// a client kept at v15 loses only the leader's address in the hint: it
// still gets CurrentLeader, and refreshes metadata to find the address.
// Brokers built on kmsg write them from v12 regardless (see addrFrom).
const FetchNoNodeEndpoints = 15
