package proxy

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/protocol"
)

// process handles a response the proxy decodes: it shows it to the tee if
// the tee observes the request, caps ApiVersions, and rewrites broker
// addresses. It returns the new frame with its size prefix appended to out,
// or nil if the response goes out as the broker sent it, and the tee's wait
// function, if any, to call before the response is written.
func (c *conn) process(e *inflight, frame, out []byte) ([]byte, func(), error) {
	hlen, err := protocol.ResponseHeaderLen(e.key, e.version, frame)
	if err != nil {
		return nil, nil, err
	}
	resp := kmsg.ResponseForKey(e.key)
	resp.SetVersion(e.version)
	if e.key == 18 && !protocol.Known(e.key, e.version) {
		// A newer ApiVersions than kmsg knows: decode at the newest it
		// does, which reads every field older clients rely on.
		resp.SetVersion(protocol.MaxVersion(18))
	}
	// The tee may keep what a response says (the archive keeps the topic
	// names of Metadata responses), so a response it observes is decoded
	// with copies; those are small (acknowledgements, metadata, commits).
	// Every other response is gone once it is written: its decode aliases
	// the frame (a Fetch response's records are not copied).
	read := resp.(unsafeReader).UnsafeReadFrom
	if e.req != nil {
		read = resp.ReadFrom
	}
	if err := read(frame[hlen:]); err != nil {
		if av, ok := resp.(*kmsg.ApiVersionsResponse); ok && av.ErrorCode != 0 {
			return nil, nil, nil // an error response in v0 layout: nothing to cap
		}
		return nil, nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(e.key), e.version, err)
	}

	var wait func()
	if e.req != nil {
		x := &Exchange{ClientID: e.clientID, Request: e.req, Response: resp, Acked: time.Now()}
		if e.owned != nil && e.key == int16(kmsg.Produce) {
			// The tee may keep a Produce request's buffer instead of
			// copying its batches: then the caller does not put it back.
			x.Retain = func() func() {
				b := e.owned
				e.owned = nil
				return func() { frames.put(b) }
			}
		}
		wait = c.p.opts.Tee.Observe(x)
	}

	var changed bool
	if av, ok := resp.(*kmsg.ApiVersionsResponse); ok {
		changed = protocol.CapVersions(av, c.p.maxVersion)
	} else if protocol.CarriesAddresses(e.key, e.version) {
		if changed, err = protocol.RewriteAddresses(resp, c.p.addrs); err != nil {
			return nil, wait, err
		}
	}
	if !changed {
		return nil, wait, nil
	}
	out = append(out, 0, 0, 0, 0)
	out = append(out, frame[:hlen]...)
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-protocol.SizeLen))
	return out, wait, nil
}
