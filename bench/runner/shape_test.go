package runner

import (
	"slices"
	"testing"
)

func TestParseShape(t *testing.T) {
	for in, want := range map[string]Shape{"16k/lz4": {16 << 10, "lz4"}, "1m/none": {1 << 20, "none"}, "5000/zstd": {5000, "zstd"}} {
		got, err := ParseShape(in)
		if err != nil || got != want {
			t.Errorf("ParseShape(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, bad := range []string{"16k", "x/lz4", "16q/none"} {
		if _, err := ParseShape(bad); err == nil {
			t.Errorf("ParseShape(%q) accepted", bad)
		}
	}
}

func TestParseShapes(t *testing.T) {
	got, err := ParseShapes("1m/none, 16k/lz4")
	if want := []Shape{{1 << 20, "none"}, {16 << 10, "lz4"}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseShapes = %v, %v; want %v", got, err, want)
	}
	if _, err := ParseShapes("1m/none,16k"); err == nil {
		t.Error("ParseShapes with a shape without a codec: no error")
	}
}
