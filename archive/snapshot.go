package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Snapshots: what a backfill reads of the cluster besides records, so
// that a restore can recreate topics and group positions the proxy never
// saw change (topics created before it ran, commits that went around it).
// Each is an event with the time it was taken: one config_snapshot per
// topic, one group_offsets_snapshot per consumer group.

// ConfigSnapshotEvent is a KindConfigSnapshot body: a topic's layout and
// every config the broker reports for it, with where each value comes
// from (Kafka's config source: DYNAMIC_TOPIC_CONFIG is what was set on the
// topic; the others are broker or default values).
type ConfigSnapshotEvent struct {
	Topic             string           `json:"topic"`
	TopicID           string           `json:"topic_id,omitempty"`
	Partitions        int32            `json:"partitions"`
	ReplicationFactor int16            `json:"replication_factor"`
	Configs           []SnapshotConfig `json:"configs"`
}

// SnapshotConfig is one config of a ConfigSnapshotEvent. Sensitive values
// are never returned by brokers; Value is then null.
type SnapshotConfig struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

// GroupOffsetsSnapshotEvent is a KindGroupOffsetsSnapshot body: a consumer
// group's committed offsets, as OffsetFetch returns them.
type GroupOffsetsSnapshotEvent struct {
	Group   string        `json:"group"`
	Offsets []GroupOffset `json:"offsets"`
}

// GroupOffset is one committed position of a group.
type GroupOffset struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata,omitempty"`
}

// snapshot is a snapshot event and what it is of ("config_snapshot/TOPIC",
// "group_offsets_snapshot/GROUP"), so that a long-running backfill writes
// one again only when its content changed.
type snapshot struct {
	subject string
	ev      Event
}

func (s *snapshot) sum() [32]byte { return sha256.Sum256(s.ev.Body) }

// snapshots reads topic configs and group offsets (limited to topics, if
// any) and returns them as events. Failures to read one resource are
// returned together but do not stop the others.
func snapshots(ctx context.Context, adm *kadm.Client, details kadm.TopicDetails, topics []string, now time.Time, clientID string) ([]snapshot, []error) {
	var (
		events []snapshot
		errs   []error
	)
	add := func(kind, subject string, body any) {
		events = append(events, snapshot{subject: kind + "/" + subject, ev: Event{Time: now, Kind: kind, ClientID: clientID, Body: mustJSON(body)}})
	}
	names := make([]string, 0, len(details))
	for name, td := range details {
		if td.Err == nil && !td.IsInternal {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			errs = append(errs, fmt.Errorf("describe topic configs: %w", err))
		}
		byName := map[string]kadm.ResourceConfig{}
		for _, rc := range rcs {
			byName[rc.Name] = rc
		}
		for _, name := range names {
			rc, ok := byName[name]
			if !ok {
				continue
			}
			if rc.Err != nil {
				errs = append(errs, fmt.Errorf("describe configs of %s: %w", name, rc.Err))
				continue
			}
			td := details[name]
			ev := ConfigSnapshotEvent{Topic: name, Partitions: int32(len(td.Partitions)), Configs: []SnapshotConfig{}}
			if td.ID != (kadm.TopicID{}) {
				ev.TopicID = hex.EncodeToString(td.ID[:])
			}
			for _, pd := range td.Partitions {
				ev.ReplicationFactor = int16(len(pd.Replicas))
				break
			}
			for _, c := range rc.Configs {
				ev.Configs = append(ev.Configs, SnapshotConfig{Name: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive})
			}
			sort.Slice(ev.Configs, func(i, j int) bool { return ev.Configs[i].Name < ev.Configs[j].Name })
			add(KindConfigSnapshot, name, ev)
		}
	}

	want := map[string]bool{}
	for _, t := range topics {
		want[t] = true
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list groups: %w", err))
		return events, errs
	}
	gnames := groups.Groups()
	sort.Strings(gnames)
	if len(gnames) == 0 {
		return events, errs
	}
	fetched := adm.FetchManyOffsets(ctx, gnames...)
	for _, g := range gnames {
		r, ok := fetched[g]
		if !ok {
			continue
		}
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("fetch offsets of group %s: %w", g, r.Err))
			continue
		}
		ev := GroupOffsetsSnapshotEvent{Group: g}
		r.Fetched.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil || (len(want) > 0 && !want[o.Topic]) {
				return
			}
			ev.Offsets = append(ev.Offsets, GroupOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.At, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata})
		})
		if len(ev.Offsets) == 0 {
			continue
		}
		sort.Slice(ev.Offsets, func(i, j int) bool {
			if ev.Offsets[i].Topic != ev.Offsets[j].Topic {
				return ev.Offsets[i].Topic < ev.Offsets[j].Topic
			}
			return ev.Offsets[i].Partition < ev.Offsets[j].Partition
		})
		add(KindGroupOffsetsSnapshot, g, ev)
	}
	return events, errs
}
