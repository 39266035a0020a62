package archive

import (
	"encoding/json"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Event kinds, as stored in the journal (part of the format).
const (
	KindOffsetCommit            = "offset_commit"
	KindTxnOffsetCommit         = "txn_offset_commit"
	KindEndTxn                  = "end_txn"
	KindCreateTopics            = "create_topics"
	KindDeleteTopics            = "delete_topics"
	KindCreatePartitions        = "create_partitions"
	KindAlterConfigs            = "alter_configs"
	KindIncrementalAlterConfigs = "incremental_alter_configs"
	KindDeleteRecords           = "delete_records"
	KindDeleteGroups            = "delete_groups"

	// Written by a backfill, not teed: see loss.go and snapshot.go.
	KindKnownLoss            = "known_loss"
	KindConfigSnapshot       = "config_snapshot"
	KindGroupOffsetsSnapshot = "group_offsets_snapshot"
)

// OffsetCommitEvent is one committed group position: a successful
// partition of an OffsetCommit or TxnOffsetCommit. The Txn fields are set
// for TxnOffsetCommit, whose commit counts only if its transaction does.
type OffsetCommitEvent struct {
	Group           string `json:"group"`
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	Offset          int64  `json:"offset"`
	LeaderEpoch     int32  `json:"leader_epoch"`
	Metadata        string `json:"metadata,omitempty"`
	MemberID        string `json:"member_id,omitempty"`
	GenerationID    int32  `json:"generation_id,omitempty"`
	TransactionalID string `json:"transactional_id,omitempty"`
	ProducerID      int64  `json:"producer_id,omitempty"`
	ProducerEpoch   int16  `json:"producer_epoch,omitempty"`
}

// EndTxnEvent is a transaction's outcome.
type EndTxnEvent struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	ProducerEpoch   int16  `json:"producer_epoch"`
	Commit          bool   `json:"commit"`
}

// ConfigEntry is one topic or broker config as set.
type ConfigEntry struct {
	Name  string  `json:"name"`
	Value *string `json:"value"`
	// Op is the IncrementalAlterConfigs operation: set, delete, append,
	// subtract. Empty for CreateTopics and AlterConfigs (which replace the
	// whole set).
	Op string `json:"op,omitempty"`
}

// TopicCreatedEvent is one topic created.
type TopicCreatedEvent struct {
	Topic             string        `json:"topic"`
	TopicID           string        `json:"topic_id,omitempty"`
	Partitions        int32         `json:"partitions"`
	ReplicationFactor int16         `json:"replication_factor"`
	Configs           []ConfigEntry `json:"configs,omitempty"`
}

// TopicDeletedEvent is one topic deleted.
type TopicDeletedEvent struct {
	Topic   string `json:"topic,omitempty"`
	TopicID string `json:"topic_id,omitempty"`
	// Observed: the deletion itself did not pass through the proxy; a
	// Metadata response named the topic with a new id at the event's
	// time, so the old topic was deleted (and a new one created) before.
	Observed bool `json:"observed,omitempty"`
}

// PartitionsCreatedEvent is a topic grown to Count partitions.
type PartitionsCreatedEvent struct {
	Topic string `json:"topic"`
	Count int32  `json:"count"`
}

// ConfigsAlteredEvent is one resource's configs changed.
type ConfigsAlteredEvent struct {
	ResourceType string        `json:"resource_type"` // topic, broker, ...
	ResourceName string        `json:"resource_name"`
	Configs      []ConfigEntry `json:"configs"`
	// Incremental is false for AlterConfigs, which replaces every config
	// of the resource with Configs.
	Incremental bool `json:"incremental"`
}

// RecordsDeletedEvent is a partition's log start moved by DeleteRecords.
type RecordsDeletedEvent struct {
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	Offset       int64  `json:"offset"`        // requested
	LowWatermark int64  `json:"low_watermark"` // the broker's answer
}

// GroupDeletedEvent is one consumer group deleted.
type GroupDeletedEvent struct {
	Group string `json:"group"`
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs are marshalled
	}
	return b
}

func resourceType(t kmsg.ConfigResourceType) string {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return "topic"
	case kmsg.ConfigResourceTypeBroker:
		return "broker"
	case kmsg.ConfigResourceTypeBrokerLogger:
		return "broker_logger"
	default:
		return t.String()
	}
}

func incrementalOp(op kmsg.IncrementalAlterConfigOp) string {
	switch op {
	case kmsg.IncrementalAlterConfigOpSet:
		return "set"
	case kmsg.IncrementalAlterConfigOpDelete:
		return "delete"
	case kmsg.IncrementalAlterConfigOpAppend:
		return "append"
	case kmsg.IncrementalAlterConfigOpSubtract:
		return "subtract"
	default:
		return op.String()
	}
}
