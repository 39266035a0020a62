package protocol

import (
	"bytes"
	"encoding/binary"
)

// Header sizes that every version shares.
const (
	// SizeLen is the length of the frame size prefix.
	SizeLen = 4
	// MinRequestLen is the smallest request a broker can accept: api key,
	// api version and correlation id.
	MinRequestLen = 8
	// MinResponseLen is the smallest response: a correlation id.
	MinResponseLen = 4
	// DefaultMaxFrameBytes is the default bound on one frame: 100 MiB, the
	// same as a broker's socket.request.max.bytes.
	DefaultMaxFrameBytes = 100 << 20
)

// Side says which peer a frame came from; it only changes the hints.
type Side int

const (
	// FromClient marks a frame read from a Kafka client.
	FromClient Side = iota
	// FromBroker marks a frame read from an upstream broker.
	FromBroker
)

// CheckSize validates a frame's size prefix before anything is allocated for
// it. min is MinRequestLen or MinResponseLen; max is the configured bound.
// The error is a *FrameError whose hint guesses what the peer really spoke.
func CheckSize(prefix [SizeLen]byte, min, max int32, side Side) (int32, error) {
	size := int32(binary.BigEndian.Uint32(prefix[:]))
	if size >= min && size <= max {
		return size, nil
	}
	fe := &FrameError{Size: size, Hint: GuessCause(prefix, side)}
	if size < min {
		fe.Err = ErrFrameTooSmall
	} else {
		fe.Err = ErrFrameTooLarge
		if fe.Hint == "" {
			fe.Hint = "a frame above the limit: raise --max-frame-bytes if the peer really sends frames this large"
		}
	}
	return size, fe
}

var httpMethods = [][]byte{
	[]byte("GET "), []byte("POST"), []byte("PUT "), []byte("HEAD"),
	[]byte("DELE"), []byte("OPTI"), []byte("PATC"), []byte("CONN"), []byte("PRI "),
}

// GuessCause names what the first four bytes of a stream look like when they
// are not a sensible Kafka size prefix, or returns "".
func GuessCause(prefix [SizeLen]byte, side Side) string {
	switch {
	case prefix[0] == 0x16 && prefix[1] == 0x03:
		if side == FromClient {
			return "looks like a TLS ClientHello: the client speaks TLS to a plaintext listener; enable client TLS on the proxy or turn TLS off in the client"
		}
		return "looks like a TLS handshake from the broker"
	case prefix[0] == 0x15 && prefix[1] == 0x03:
		if side == FromBroker {
			return "looks like a TLS alert: the broker expects TLS; enable upstream TLS"
		}
		return "looks like a TLS alert"
	case bytes.Equal(prefix[:], []byte("HTTP")):
		return "looks like an HTTP response: the upstream is an HTTP server, not a Kafka broker"
	}
	for _, m := range httpMethods {
		if bytes.Equal(prefix[:], m) {
			return "looks like an HTTP request: this is a Kafka port; the admin endpoints are on --admin-listen"
		}
	}
	if prefix[0] == 'S' && prefix[1] == 'S' && prefix[2] == 'H' {
		return "looks like an SSH banner"
	}
	return ""
}
