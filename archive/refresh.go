package archive

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Refresh brings the archive up to date with its store: it lists the
// indexes again, reads only those it has not read yet and forgets those
// pruned since. A long-running reader (the proxy's background backfill)
// calls it instead of opening the archive again, which would read every
// index each time. An index that does not read is an error, as in
// OpenArchive; the archive is then left as it was.
func (a *Archive) Refresh(ctx context.Context) error {
	have := make(map[string]*Index, len(a.indexes))
	for _, ix := range a.indexes {
		have[ix.Key] = ix
	}
	var names []string
	if err := a.store.List(ctx, "v1/idx/", func(o ObjectInfo) error {
		if strings.HasSuffix(o.Key, ".idx") {
			names = append(names, o.Key)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list %s: %w", a.store, err)
	}
	out := make([]*Index, 0, len(names))
	for _, name := range names {
		ix, ok := have[name]
		if !ok {
			var err error
			if ix, err = a.readIndex(ctx, name); err != nil {
				return err
			}
		}
		out = append(out, ix)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	a.indexes = out
	a.partsMu.Lock()
	a.parts = nil
	a.partsMu.Unlock()
	return nil
}
