package archive

import (
	"encoding/hex"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/protocol"
)

// events turns a successful commit, transaction end or admin change into
// journal events: one per resource the broker accepted (error code 0).
func (t *Tee) events(x *protocol.Exchange) []Event {
	var out []Event
	add := func(kind string, body any) {
		out = append(out, Event{Time: x.Acked, Kind: kind, ClientID: x.ClientID, Body: mustJSON(body)})
	}
	switch req := x.Request.(type) {
	case *kmsg.EndTxnRequest:
		if x.Response.(*kmsg.EndTxnResponse).ErrorCode == 0 {
			add(KindEndTxn, EndTxnEvent{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch, Commit: req.Commit})
		}

	case *kmsg.OffsetCommitRequest:
		ok := map[partKey]bool{}
		for _, tp := range x.Response.(*kmsg.OffsetCommitResponse).Topics {
			for _, p := range tp.Partitions {
				ok[partKey{tp.Topic, tp.TopicID, p.Partition}] = p.ErrorCode == 0
			}
		}
		for _, tp := range req.Topics {
			name, known := t.topicName(tp.Topic, tp.TopicID)
			for _, p := range tp.Partitions {
				if !ok[partKey{tp.Topic, tp.TopicID, p.Partition}] || !known {
					continue
				}
				add(KindOffsetCommit, OffsetCommitEvent{Group: req.Group, Topic: name, Partition: p.Partition, Offset: p.Offset,
					LeaderEpoch: p.LeaderEpoch, Metadata: deref(p.Metadata), MemberID: req.MemberID, GenerationID: req.Generation})
			}
		}

	case *kmsg.TxnOffsetCommitRequest:
		// v6+ names topics by id only, like OffsetCommit v10.
		ok := map[partKey]bool{}
		for _, tp := range x.Response.(*kmsg.TxnOffsetCommitResponse).Topics {
			for _, p := range tp.Partitions {
				ok[partKey{tp.Topic, tp.TopicID, p.Partition}] = p.ErrorCode == 0
			}
		}
		for _, tp := range req.Topics {
			name, known := t.topicName(tp.Topic, tp.TopicID)
			for _, p := range tp.Partitions {
				if !ok[partKey{tp.Topic, tp.TopicID, p.Partition}] || !known {
					continue
				}
				add(KindTxnOffsetCommit, OffsetCommitEvent{Group: req.Group, Topic: name, Partition: p.Partition, Offset: p.Offset,
					LeaderEpoch: p.LeaderEpoch, Metadata: deref(p.Metadata), MemberID: req.MemberID, GenerationID: req.Generation,
					TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch})
			}
		}

	case *kmsg.CreateTopicsRequest:
		if req.ValidateOnly {
			return nil
		}
		asked := map[string]kmsg.CreateTopicsRequestTopic{}
		for _, tp := range req.Topics {
			asked[tp.Topic] = tp
		}
		t.topics.Lock()
		for _, tp := range x.Response.(*kmsg.CreateTopicsResponse).Topics {
			if tp.ErrorCode != 0 {
				continue
			}
			if tp.TopicID != ([16]byte{}) {
				t.topics.byID[tp.TopicID] = tp.Topic
				t.setCurrent(tp.Topic, tp.TopicID)
			}
			a := asked[tp.Topic]
			ev := TopicCreatedEvent{Topic: tp.Topic, Partitions: a.NumPartitions, ReplicationFactor: a.ReplicationFactor}
			if tp.NumPartitions > 0 { // v5+: what the broker actually chose
				ev.Partitions, ev.ReplicationFactor = tp.NumPartitions, tp.ReplicationFactor
			}
			if tp.TopicID != ([16]byte{}) {
				ev.TopicID = hex.EncodeToString(tp.TopicID[:])
			}
			for _, c := range a.Configs {
				ev.Configs = append(ev.Configs, ConfigEntry{Name: c.Name, Value: c.Value})
			}
			add(KindCreateTopics, ev)
		}
		t.topics.Unlock()

	case *kmsg.DeleteTopicsRequest:
		for _, tp := range x.Response.(*kmsg.DeleteTopicsResponse).Topics {
			if tp.ErrorCode != 0 {
				continue
			}
			ev := TopicDeletedEvent{Topic: deref(tp.Topic)}
			if tp.TopicID != ([16]byte{}) {
				ev.TopicID = hex.EncodeToString(tp.TopicID[:])
				if ev.Topic == "" {
					ev.Topic, _ = t.topicName("", tp.TopicID)
				}
			}
			if ev.Topic != "" {
				// Seen deleted: its next id is a new topic, not news, and
				// its old id, if a stale broker names it, is no topic.
				t.topics.Lock()
				if id, ok := t.topics.current[ev.Topic]; ok {
					t.topics.gone[id] = true
				}
				if tp.TopicID != ([16]byte{}) {
					t.topics.gone[tp.TopicID] = true
				}
				t.setCurrent(ev.Topic, [16]byte{})
				t.topics.Unlock()
			}
			add(KindDeleteTopics, ev)
		}

	case *kmsg.CreatePartitionsRequest:
		if req.ValidateOnly {
			return nil
		}
		count := map[string]int32{}
		for _, tp := range req.Topics {
			count[tp.Topic] = tp.Count
		}
		for _, tp := range x.Response.(*kmsg.CreatePartitionsResponse).Topics {
			if tp.ErrorCode == 0 {
				add(KindCreatePartitions, PartitionsCreatedEvent{Topic: tp.Topic, Count: count[tp.Topic]})
			}
		}

	case *kmsg.AlterConfigsRequest:
		if req.ValidateOnly {
			return nil
		}
		ok := okResources(x.Response.(*kmsg.AlterConfigsResponse).Resources, func(r kmsg.AlterConfigsResponseResource) (int16, kmsg.ConfigResourceType, string) {
			return r.ErrorCode, r.ResourceType, r.ResourceName
		})
		for _, r := range req.Resources {
			if !ok[resKey{r.ResourceType, r.ResourceName}] {
				continue
			}
			ev := ConfigsAlteredEvent{ResourceType: resourceType(r.ResourceType), ResourceName: r.ResourceName}
			for _, c := range r.Configs {
				ev.Configs = append(ev.Configs, ConfigEntry{Name: c.Name, Value: c.Value})
			}
			add(KindAlterConfigs, ev)
		}

	case *kmsg.IncrementalAlterConfigsRequest:
		if req.ValidateOnly {
			return nil
		}
		ok := okResources(x.Response.(*kmsg.IncrementalAlterConfigsResponse).Resources, func(r kmsg.IncrementalAlterConfigsResponseResource) (int16, kmsg.ConfigResourceType, string) {
			return r.ErrorCode, r.ResourceType, r.ResourceName
		})
		for _, r := range req.Resources {
			if !ok[resKey{r.ResourceType, r.ResourceName}] {
				continue
			}
			ev := ConfigsAlteredEvent{ResourceType: resourceType(r.ResourceType), ResourceName: r.ResourceName, Incremental: true}
			for _, c := range r.Configs {
				ev.Configs = append(ev.Configs, ConfigEntry{Name: c.Name, Value: c.Value, Op: incrementalOp(c.Op)})
			}
			add(KindIncrementalAlterConfigs, ev)
		}

	case *kmsg.DeleteRecordsRequest:
		asked := map[partKey]int64{}
		for _, tp := range req.Topics {
			for _, p := range tp.Partitions {
				asked[partKey{topic: tp.Topic, partition: p.Partition}] = p.Offset
			}
		}
		for _, tp := range x.Response.(*kmsg.DeleteRecordsResponse).Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode == 0 {
					add(KindDeleteRecords, RecordsDeletedEvent{Topic: tp.Topic, Partition: p.Partition,
						Offset: asked[partKey{topic: tp.Topic, partition: p.Partition}], LowWatermark: p.LowWatermark})
				}
			}
		}

	case *kmsg.DeleteGroupsRequest:
		for _, g := range x.Response.(*kmsg.DeleteGroupsResponse).Groups {
			if g.ErrorCode == 0 {
				add(KindDeleteGroups, GroupDeletedEvent{Group: g.Group})
			}
		}
	}
	return out
}

type resKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

func okResources[R any](rs []R, get func(R) (int16, kmsg.ConfigResourceType, string)) map[resKey]bool {
	ok := make(map[resKey]bool, len(rs))
	for _, r := range rs {
		code, typ, name := get(r)
		ok[resKey{typ, name}] = code == 0
	}
	return ok
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
