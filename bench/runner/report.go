package runner

import (
	"bytes"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes a report as JSON indented by two spaces: every
// benchmark's -json.
func WriteJSON(w io.Writer, report any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// Machine describes where a report was measured.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// ThisMachine describes the machine the process runs on.
func ThisMachine() Machine {
	return Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
}

// Table is a report's table: a tabwriter with columns two spaces apart
// whose Flush writes the table to w without the padding that ends a row
// whose last cells are empty (a result without a target, say).
type Table struct {
	*tabwriter.Writer
	w   io.Writer
	buf bytes.Buffer
}

// NewTable is a Table writing to w.
func NewTable(w io.Writer) *Table {
	t := &Table{w: w}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

// Flush writes the rows written so far to w, each without trailing
// spaces.
func (t *Table) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	defer t.buf.Reset()
	for line := range strings.Lines(t.buf.String()) {
		if _, err := io.WriteString(t.w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}
