package archive

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/protocol"
)

// TestTeeNoticesATopicCreatedAgain: a Metadata response naming a topic
// with a new id means it was deleted and created again around the proxy
// (one observed deletion event); a stale broker naming an old id again,
// or a topic deleted through the proxy coming back, is no news.
func TestTeeNoticesATopicCreatedAgain(t *testing.T) {
	tee := NewTee(nil, TeeOptions{})
	meta := func(ids ...byte) int {
		resp := kmsg.NewPtrMetadataResponse()
		for _, id := range ids {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = kmsg.StringPtr("t")
			mt.TopicID = [16]byte{id}
			resp.Topics = append(resp.Topics, mt)
		}
		return len(tee.learnTopics(&protocol.Exchange{Acked: time.Now()}, resp))
	}
	steps := []struct {
		ids  []byte
		want int
	}{
		{[]byte{1}, 0}, // first sight
		{[]byte{1}, 0},
		{[]byte{2}, 1}, // created again around the proxy
		{[]byte{1}, 0}, // a stale broker
		{[]byte{2}, 0},
	}
	for i, s := range steps {
		if got := meta(s.ids...); got != s.want {
			t.Fatalf("step %d (ids %v): %d events, want %d", i, s.ids, got, s.want)
		}
	}
	// Deleted through the proxy: the tee journals that itself.
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{"t"}
	resp := kmsg.NewPtrDeleteTopicsResponse()
	dt := kmsg.NewDeleteTopicsResponseTopic()
	dt.Topic = kmsg.StringPtr("t")
	resp.Topics = append(resp.Topics, dt)
	if evs := tee.events(&protocol.Exchange{Request: req, Response: resp, Acked: time.Now()}); len(evs) != 1 {
		t.Fatalf("DeleteTopics: %d events", len(evs))
	}
	for i, s := range []struct {
		ids  []byte
		want int
	}{{[]byte{2}, 0}, {[]byte{3}, 0}, {[]byte{4}, 1}} {
		if got := meta(s.ids...); got != s.want {
			t.Fatalf("after the deletion, step %d (ids %v): %d events, want %d", i, s.ids, got, s.want)
		}
	}
}
