package protocol

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// keyInfo is what the hot path needs to know of an API key without
// allocating a kmsg request per frame: the versions kmsg knows and the first
// flexible one. It is computed once from kmsg at init.
type keyInfo struct {
	known        bool
	max          int16 // highest version kmsg can encode and decode
	flexibleFrom int16 // first flexible version, or -1 if none
}

// MaxKey bounds the API keys Amber tables; keys at or above it are unknown
// by definition (Kafka's highest is below 100).
const MaxKey = 1024

const maxKey = MaxKey

var keys [maxKey]keyInfo

func init() {
	for k := int16(0); k < maxKey; k++ {
		req := kmsg.RequestForKey(k)
		if req == nil {
			continue
		}
		info := keyInfo{known: true, max: req.MaxVersion(), flexibleFrom: -1}
		for v := int16(0); v <= info.max; v++ {
			req.SetVersion(v)
			if req.IsFlexible() {
				info.flexibleFrom = v
				break
			}
		}
		keys[k] = info
	}
}

// Known reports whether kmsg can decode key at version.
func Known(key, version int16) bool {
	return key >= 0 && key < maxKey && keys[key].known && version >= 0 && version <= keys[key].max
}

// MaxVersion returns the highest version of key that kmsg knows, or -1.
func MaxVersion(key int16) int16 {
	if key < 0 || key >= maxKey || !keys[key].known {
		return -1
	}
	return keys[key].max
}

// Flexible reports whether key at version uses the flexible encoding
// (compact strings, tagged fields). It is false for keys kmsg does not know.
func Flexible(key, version int16) bool {
	if key < 0 || key >= maxKey {
		return false
	}
	k := keys[key]
	return k.known && k.flexibleFrom >= 0 && version >= k.flexibleFrom
}

// RequestHeader is the decoded header of a request frame. ClientID aliases
// the frame it was parsed from.
type RequestHeader struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      []byte // nil for a null client id
	// BodyOffset is where the body starts in the frame (after the size
	// prefix). It is set only when Known: an unknown key's header tags
	// cannot be located with certainty.
	BodyOffset int
	Known      bool
}

// ParseRequestHeader parses a request frame (the bytes after the size
// prefix). Only the first eight bytes are needed for an unknown key.
func ParseRequestHeader(frame []byte) (RequestHeader, error) {
	var h RequestHeader
	if len(frame) < MinRequestLen {
		return h, ErrTruncated
	}
	h.Key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.Version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	h.Known = Known(h.Key, h.Version)
	if !h.Known {
		return h, nil
	}
	// Every request header of every known key, v1 or v2, carries a
	// nullable int16-prefixed client id; v2 (flexible) adds tagged fields.
	// ControlledShutdown v0 (header v0, no client id) is broker-internal.
	if h.Key == 7 && h.Version == 0 {
		h.BodyOffset = MinRequestLen
		return h, nil
	}
	r := kbin.Reader{Src: frame[MinRequestLen:]}
	n := r.Int16()
	if n >= 0 {
		h.ClientID = r.Span(int(n))
	}
	if Flexible(h.Key, h.Version) {
		skipTags(&r)
	}
	if !r.Ok() {
		h.Known = false
		return h, ErrTruncated
	}
	h.BodyOffset = len(frame) - len(r.Src)
	return h, nil
}

// ResponseHeaderLen returns the length of the response header at the start
// of frame (after the size prefix): the correlation id, plus tagged fields for
// flexible versions. ApiVersions responses never have tagged fields in their
// header, whatever the version, so that a client can parse the response to
// a version the broker does not support.
func ResponseHeaderLen(key, version int16, frame []byte) (int, error) {
	if len(frame) < MinResponseLen {
		return 0, ErrTruncated
	}
	if key == 18 || !Flexible(key, version) {
		return MinResponseLen, nil
	}
	r := kbin.Reader{Src: frame[MinResponseLen:]}
	skipTags(&r)
	if !r.Ok() {
		return 0, ErrTruncated
	}
	return len(frame) - len(r.Src), nil
}

// CorrelationID returns the correlation id at the start of a response frame.
func CorrelationID(frame []byte) int32 {
	return int32(binary.BigEndian.Uint32(frame))
}

// skipTags skips a tagged-field section. Unlike kmsg.SkipTags it stops at
// the first short read: a hostile count of 2^32-1 tags in a 10-byte frame
// must cost 10 bytes of work, not four billion iterations.
func skipTags(r *kbin.Reader) {
	for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
		r.Uvarint()
		r.Span(int(r.Uvarint()))
	}
}
