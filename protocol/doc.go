// Package protocol holds what Amber needs to know of the Kafka wire format and
// nothing more: framing, request and response headers, the rewriting of
// broker addresses, and the ApiVersions capping that keeps clients on versions
// Amber can decode. Message bodies are always decoded and encoded by kmsg;
// this package never describes a schema by hand.
//
// A Kafka frame is a big-endian int32 size followed by that many bytes:
//
//	request frame                          response frame
//	+--------+                             +--------+
//	| size   | int32, bytes that follow     | size   | int32
//	+--------+                             +--------+
//	| key    | int16  ┐                     | corrID | int32
//	| ver    | int16  │ request header      | tags   | uvarint-counted tagged
//	| corrID | int32  │ (v1: no tags,       |        | fields, only for flexible
//	| client | int16 len + bytes (nullable) |        | versions, and never for
//	| tags   | flexible versions only  ┘    |        | ApiVersions (key 18)
//	| body   | kmsg-encoded request        | body   | kmsg-encoded response
//	+--------+                             +--------+
//
// The first eight bytes of every request header (key, version, correlation
// id) have the same layout in every version, so a request whose key Amber
// does not know can still be matched to its response and forwarded.
package protocol
