package runner

import (
	"bytes"
	"fmt"
	"testing"
)

// TestTable checks that columns line up two spaces apart and that a row
// whose last cell is empty does not end in padding.
func TestTable(t *testing.T) {
	var out bytes.Buffer
	tw := NewTable(&out)
	fmt.Fprintln(tw, "scenario\tmetric\ttarget")
	fmt.Fprintln(tw, "produce\tMB/s\t≥ 0.95  ok")
	fmt.Fprintln(tw, "consume throughput\tCPU s/GB\t")
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "scenario            metric    target\n" +
		"produce             MB/s      ≥ 0.95  ok\n" +
		"consume throughput  CPU s/GB\n"
	if out.String() != want {
		t.Errorf("table:\n%q\nwant:\n%q", out.String(), want)
	}
}
