package impact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Emit writes items to topic, one record each: key the group (so that a
// group's items keep their order in one partition), value the item as
// JSON. It returns once the cluster acknowledged every record.
func Emit(ctx context.Context, cl *kgo.Client, topic string, items []WorkItem) error {
	if len(items) == 0 {
		return nil
	}
	rs := make([]*kgo.Record, len(items))
	for i, it := range items {
		v, err := json.Marshal(it)
		if err != nil {
			return err
		}
		rs[i] = &kgo.Record{Topic: topic, Key: []byte(it.Group), Value: v,
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("write work list to %s: the topic does not exist: create it, or name an existing one: %w", topic, err)
		}
		return fmt.Errorf("write work list to %s: %w", topic, err)
	}
	return nil
}
