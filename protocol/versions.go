package protocol

import "github.com/twmb/franz-go/pkg/kmsg"

// CapVersions lowers, in an ApiVersions response, the maximum version of
// every key for which decode returns true to what kmsg knows, so that a
// client never sends Amber a version it must decode but cannot. Keys Amber
// only forwards keep the broker's versions, including keys kmsg has never
// heard of. A key whose broker range lies wholly above kmsg's is removed.
// It reports whether anything changed.
func CapVersions(resp *kmsg.ApiVersionsResponse, decode func(key int16) bool) bool {
	changed := false
	kept := resp.ApiKeys[:0]
	for _, k := range resp.ApiKeys {
		if decode(k.ApiKey) {
			max := MaxVersion(k.ApiKey)
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
