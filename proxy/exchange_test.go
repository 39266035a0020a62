package proxy

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// keepTee keeps the topic names of the Metadata responses it observes.
type keepTee struct{ topics []string }

func (*keepTee) Keys() []int16                       { return []int16{3} }
func (*keepTee) Prepare(kmsg.Request) []kmsg.Request { return nil }

func (t *keepTee) Observe(x *Exchange) func() {
	for _, tp := range x.Response.(*kmsg.MetadataResponse).Topics {
		t.topics = append(t.topics, *tp.Topic)
	}
	return nil
}

// TestTeedResponseOutlivesFrame: the Tee contract lets a tee keep what a
// response says, so what it kept must survive the frame buffer being
// reused for the next frame.
func TestTeedResponseOutlivesFrame(t *testing.T) {
	tee := &keepTee{}
	c := &conn{p: &Proxy{opts: Options{Tee: tee}}}
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(12)
	topic := kmsg.NewMetadataResponseTopic()
	topic.Topic = kmsg.StringPtr("orders")
	resp.Topics = append(resp.Topics, topic)
	frame := []byte{0, 0, 0, 7, 0} // correlation id 7, no header tags
	frame = resp.AppendTo(frame)

	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	e := inflight{key: 3, version: 12, corr: 7, decode: true, req: req}
	if _, _, err := c.process(&e, frame, nil); err != nil {
		t.Fatal(err)
	}
	for i := range frame {
		frame[i] = 'x' // the buffer goes to the next frame
	}
	if len(tee.topics) != 1 || tee.topics[0] != "orders" {
		t.Errorf("kept topics %q, want [orders]", tee.topics)
	}
}
