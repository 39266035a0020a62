package testkit

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/protocol"
)

// FetchRawBatches fetches a partition's log from the cluster as the raw v2
// record batches the broker stores (markers and aborted data included,
// read-uncommitted), keyed by base offset: what `archive == cluster`
// compares byte for byte.
func FetchRawBatches(ctx context.Context, cl *kgo.Client, topic string, partition int32) (map[int64][]byte, error) {
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	meta, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	leader := int32(-1)
	var topicID [16]byte
	for _, t := range meta.Topics {
		topicID = t.TopicID
		for _, p := range t.Partitions {
			if p.Partition == partition {
				leader = p.Leader
			}
		}
	}
	if leader < 0 {
		return nil, fmt.Errorf("no leader for %s/%d", topic, partition)
	}
	out := map[int64][]byte{}
	offset := int64(0)
	for {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 10
		req.MaxBytes = 64 << 20
		req.IsolationLevel = 0
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, topicID // by name to v12, by id from v13
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = partition
		rp.FetchOffset = offset
		rp.PartitionMaxBytes = 32 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := cl.Broker(int(leader)).RetriableRequest(ctx, req)
		if err != nil {
			return nil, err
		}
		resp := kresp.(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return nil, fmt.Errorf("fetch %s/%d: unexpected response shape", topic, partition)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			return nil, fmt.Errorf("fetch %s/%d@%d: error code %d", topic, partition, offset, p.ErrorCode)
		}
		n := 0
		err = protocol.SplitBatches(p.RecordBatches, func(h protocol.BatchHeader, b []byte) error {
			out[h.FirstOffset] = append([]byte(nil), b...)
			offset = h.FirstOffset + h.Records()
			n++
			return nil
		})
		if err != nil && n == 0 {
			return nil, err
		}
		if offset >= p.HighWatermark || n == 0 {
			return out, nil
		}
	}
}
