package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/protocol"
)

func TestCapVersions(t *testing.T) {
	resp := kmsg.NewPtrApiVersionsResponse()
	for _, k := range []struct{ key, min, max int16 }{
		{0, 3, 13},      // Produce: advertised from v0, capped
		{1, 4, 18},      // Fetch: capped
		{3, 0, 13},      // Metadata: under its cap
		{32000, 0, 5},   // unknown to kmsg, only forwarded: untouched
		{60, 20, 30},    // wholly above its cap: removed
		{17, 0, 1 << 8}, // not capped by limit: untouched
	} {
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.key, MinVersion: k.min, MaxVersion: k.max})
	}
	limit := func(key int16) (int16, bool) {
		switch key {
		case 0:
			return 11, true
		case 1:
			return 15, true
		case 3, 60:
			return 13, true
		}
		return 0, false
	}
	if !protocol.CapVersions(resp, limit) {
		t.Fatal("CapVersions reported no change")
	}
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	want := map[int16][2]int16{0: {0, 11}, 1: {4, 15}, 3: {0, 13}, 32000: {0, 5}, 17: {0, 1 << 8}}
	if len(got) != len(want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("key %d: versions %v, want %v", k, got[k], w)
		}
	}
}
