// Package kafkatest holds test helpers that reason about kmsg messages by
// reflection: finding and filling every broker address a message carries.
package kafkatest

import (
	"net"
	"reflect"
	"strconv"
)

// Addr is one host:port pair found in a message.
type Addr struct {
	Host string
	Port int32
}

func (a Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) }

// hasHostPort reports whether struct type t has a string Host field and an
// integer Port field: the shape of every address in the Kafka protocol.
func hasHostPort(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	h, ok1 := t.FieldByName("Host")
	p, ok2 := t.FieldByName("Port")
	return ok1 && ok2 && h.Type.Kind() == reflect.String &&
		(p.Type.Kind() == reflect.Int32 || p.Type.Kind() == reflect.Uint16)
}

// ContainsAddr reports whether a value of type t can carry an address.
func ContainsAddr(t reflect.Type) bool {
	return containsAddr(t, map[reflect.Type]bool{})
}

func containsAddr(t reflect.Type, seen map[reflect.Type]bool) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return false
	}
	seen[t] = true
	if hasHostPort(t) {
		return true
	}
	for i := 0; i < t.NumField(); i++ {
		if containsAddr(t.Field(i).Type, seen) {
			return true
		}
	}
	return false
}

// Collect returns every address in v (a pointer to a kmsg message),
// skipping empty hosts (fields absent at the message's version, and error
// entries, which name no address).
func Collect(v any) []Addr {
	var out []Addr
	walk(reflect.ValueOf(v), func(s reflect.Value) {
		a := Addr{Host: s.FieldByName("Host").String(), Port: int32(intOf(s.FieldByName("Port")))}
		if a.Host != "" {
			out = append(out, a)
		}
	})
	return out
}

func intOf(v reflect.Value) int64 {
	if v.Kind() == reflect.Uint16 {
		return int64(v.Uint())
	}
	return v.Int()
}

func walk(v reflect.Value, fn func(reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem(), fn)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), fn)
		}
	case reflect.Struct:
		if hasHostPort(v.Type()) {
			fn(v)
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walk(v.Field(i), fn)
			}
		}
	}
}

// Fill sets every address v can carry to the given addresses: each slice
// of address-bearing structs gets one element per address, each lone
// address struct the first address. NodeID fields beside an address get the
// address's index plus nodeBase.
func Fill(v any, addrs []Addr, nodeBase int32) {
	fill(reflect.ValueOf(v), addrs, nodeBase, 0)
}

func fill(v reflect.Value, addrs []Addr, nodeBase int32, idx int) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			if !ContainsAddr(v.Type()) {
				return
			}
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), addrs, nodeBase, idx)
	case reflect.Slice:
		if !ContainsAddr(v.Type()) {
			return
		}
		s := reflect.MakeSlice(v.Type(), len(addrs), len(addrs))
		for i := range addrs {
			fill(s.Index(i), addrs, nodeBase, i)
		}
		v.Set(s)
	case reflect.Struct:
		t := v.Type()
		if hasHostPort(t) {
			a := addrs[idx]
			v.FieldByName("Host").SetString(a.Host)
			p := v.FieldByName("Port")
			if p.Kind() == reflect.Uint16 {
				p.SetUint(uint64(a.Port))
			} else {
				p.SetInt(int64(a.Port))
			}
		}
		for _, name := range []string{"NodeID", "LeaderID"} {
			if f := v.FieldByName(name); f.IsValid() && f.Kind() == reflect.Int32 && f.CanSet() {
				f.SetInt(int64(nodeBase) + int64(idx))
			}
		}
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				fill(v.Field(i), addrs, nodeBase, idx)
			}
		}
	}
}
