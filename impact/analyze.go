package impact

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Notes the report carries when it cannot answer exactly; they say what
// to do.
const (
	noteNoHistory = "The archive holds no offset commit for these partitions: the consumer groups commit around Amber " +
		"(straight to the brokers), or none consumed them. For an exact answer, route consumers through an Amber proxy " +
		"(point their bootstrap servers at it): their commits are archived from then on. Meanwhile, `amber backfill` " +
		"(or a proxy's periodic backfill) snapshots every group's committed offsets; with those, this report gives a " +
		"coarser answer: where each group was when a snapshot was taken, not when it crossed the window."
	noteSnapshots = "No commit on these partitions went through Amber: the groups below are known only from backfill " +
		"snapshots of their committed offsets. That is coarser: a group counts as having consumed what it was past at a " +
		"snapshot, and its times are those of the first snapshot that shows it (upper bounds). Route consumers through " +
		"Amber for exact ranges and times."
)

// Analyze reports, for the window, each partition's offsets and each
// consumer group's consumption of them.
func Analyze(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	topics := map[string]bool{}
	for _, t := range o.Topics {
		topics[t] = true
	}
	h, err := loadHistory(ctx, o.Archive, o.Journal, topics)
	if err != nil {
		return nil, err
	}
	lives, err := h.lifetimes(o.Topics, o.Since, o.Until)
	if err != nil {
		return nil, err
	}
	parts, err := loadPartitions(o.Archive, o.Journal, topics, lives)
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for k := range parts {
		present[k.topic] = true
	}
	var missing []string
	for _, t := range o.Topics {
		if !present[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s (`amber ls --archive URL` lists the archived topics)", ErrUnknownTopic, strings.Join(missing, ", "))
	}

	rep := &Report{Window: Window{o.Since, o.Until}, Topics: o.Topics, Group: o.Group, Partitions: []PartitionWindow{}, Groups: []Group{}}
	windows := map[tp]PartitionWindow{}
	for k, p := range parts {
		if w, ok := p.window(o.Since, o.Until); ok {
			windows[k] = w
			rep.Partitions = append(rep.Partitions, w)
		}
	}
	sort.Slice(rep.Partitions, func(i, j int) bool { return lessTP(rep.Partitions[i].tp(), rep.Partitions[j].tp()) })
	if len(rep.Partitions) == 0 {
		rep.CommitHistory = HistoryNone
		rep.Notes = append(rep.Notes, fmt.Sprintf("No record of %s was acknowledged between %s and %s: no group can have consumed any. "+
			"`amber ls --archive URL` shows when each partition's archived records were acknowledged.",
			strings.Join(o.Topics, ", "), fmtTime(o.Since), fmtTime(o.Until)))
		return rep, nil
	}

	c := &counter{ctx: ctx, a: o.Archive, lives: lives}
	groups := map[string]*Group{}
	var commitTracks, snapshotTracks int
	var newestCommit time.Time
	for k, t := range h.tracks {
		w, ok := windows[k.tp]
		if !ok {
			continue
		}
		// Of a topic deleted and created again, only what the group did
		// while the topic of the window lived.
		if t = t.within(lives[k.topic]); len(t.commits)+len(t.snapshots)+t.aborted+t.pending == 0 {
			continue
		}
		if len(t.commits) > 0 || t.aborted+t.pending > 0 {
			commitTracks++
			if n := len(t.commits); n > 0 && t.commits[n-1].at.After(newestCommit) {
				newestCommit = t.commits[n-1].at
			}
		} else {
			snapshotTracks++
		}
		if o.Group != "" && k.group != o.Group {
			continue
		}
		gp, err := groupPartition(c, parts[k.tp], w, t)
		if err != nil {
			return nil, err
		}
		g := groups[k.group]
		if g == nil {
			g = &Group{Group: k.group}
			groups[k.group] = g
		}
		g.Partitions = append(g.Partitions, gp)
	}
	for _, g := range groups {
		summarise(g, windows)
		rep.Groups = append(rep.Groups, *g)
	}
	sort.Slice(rep.Groups, func(i, j int) bool { return rep.Groups[i].Group < rep.Groups[j].Group })

	switch {
	case commitTracks > 0:
		rep.CommitHistory = HistoryExact
		if snapshotTracks > 0 {
			rep.Notes = append(rep.Notes, "Some groups are known on some partitions only from backfill snapshots (source: snapshots or mixed): "+
				"a coarser answer; their times are upper bounds. Route every consumer through Amber for exact ones.")
		}
		if !newestCommit.IsZero() && newestCommit.Before(o.Since) {
			rep.Notes = append(rep.Notes, fmt.Sprintf("The newest archived commit on these partitions is from %s, before the window: "+
				"if any group consumed since, it committed around Amber. Route consumers through an Amber proxy for an exact answer.", fmtTime(newestCommit)))
		}
	case snapshotTracks > 0:
		rep.CommitHistory = HistorySnapshots
		rep.Notes = append(rep.Notes, noteSnapshots)
	default:
		rep.CommitHistory = HistoryNone
		rep.Notes = append(rep.Notes, noteNoHistory)
	}
	if o.Group != "" && len(rep.Groups) == 0 && rep.CommitHistory != HistoryNone {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Group %s has no archived commit or snapshot on these partitions: either it does not "+
			"consume them, or it commits around Amber. Run without --group to see the groups that do.", o.Group))
	}
	var unnamed []string
	for g := range h.unnamed {
		if o.Group == "" || g == o.Group {
			unnamed = append(unnamed, g)
		}
	}
	sort.Strings(unnamed)
	for _, g := range unnamed {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Group %s: %d commits were archived without a topic name (TxnOffsetCommit v6 names "+
			"topics by id, which the proxy that archived them did not resolve); they are not counted, so %s may have consumed more "+
			"than shown. `amber backfill` snapshots of its offsets give a coarser answer.", g, h.unnamed[g], g))
	}
	for _, g := range rep.Groups {
		if g.PendingTxnCommits > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("Group %s: %d transactional commits have no outcome in the archive (the transaction "+
				"is still open, or its EndTxn went around Amber); they are not counted.", g.Group, g.PendingTxnCommits))
		}
	}
	return rep, nil
}

// groupPartition is a group's impact on one partition's window w.
func groupPartition(c *counter, p *partition, w PartitionWindow, t *track) (GroupPartition, error) {
	gp := GroupPartition{Topic: w.Topic, Partition: w.Partition, Status: StatusNone, Source: SourceCommits,
		Committed: -1, Highest: -1, AbortedTxnCommits: t.aborted, PendingTxnCommits: t.pending}
	seen := t.commits
	if len(seen) == 0 && len(t.snapshots) > 0 {
		seen, gp.Source = t.snapshots, SourceSnapshots
	}
	for _, s := range seen {
		gp.Highest = max(gp.Highest, s.offset)
		if gp.EnteredAt == nil && s.offset > w.FromOffset {
			gp.EnteredAt = timePtr(s.at)
		}
		if gp.PassedAt == nil && s.offset >= w.ToOffset {
			gp.PassedAt = timePtr(s.at)
		}
	}
	if n := len(seen); n > 0 {
		gp.Committed, gp.CommittedAt = seen[n-1].offset, timePtr(seen[n-1].at)
	}
	end := min(max(gp.Highest, w.FromOffset), w.ToOffset)
	if end > w.FromOffset {
		gp.Consumed = &Range{w.FromOffset, end}
		n, err := c.count(p, w.FromOffset, end)
		if err != nil {
			return gp, err
		}
		gp.Records = n
		gp.Status = StatusPartial
		if end == w.ToOffset {
			gp.Status = StatusAll
		}
	}
	return gp, nil
}

// summarise fills in a group's totals from its partitions.
func summarise(g *Group, windows map[tp]PartitionWindow) {
	sort.Slice(g.Partitions, func(i, j int) bool { return lessTP(g.Partitions[i].tp(), g.Partitions[j].tp()) })
	g.Status = StatusAll
	sources := map[string]bool{}
	topics := map[string]bool{}
	has := map[tp]bool{}
	var passed time.Time
	for _, p := range g.Partitions {
		topics[p.Topic] = true
		has[p.tp()] = true
		sources[p.Source] = true
		g.Records += p.Records
		g.WindowRecords += windows[p.tp()].Records
		g.AbortedTxnCommits += p.AbortedTxnCommits
		g.PendingTxnCommits += p.PendingTxnCommits
		if p.EnteredAt != nil && (g.EnteredAt == nil || p.EnteredAt.Before(*g.EnteredAt)) {
			g.EnteredAt = p.EnteredAt
		}
		if p.Status != StatusAll {
			g.Status = StatusPartial
		} else if p.PassedAt != nil && p.PassedAt.After(passed) {
			passed = *p.PassedAt
		}
	}
	switch {
	case g.Records == 0:
		g.Status = StatusNone
	case g.Status == StatusAll && !passed.IsZero():
		g.PassedAt = timePtr(passed)
	}
	g.Affected = g.Records > 0
	g.Source = SourceMixed
	if len(sources) == 1 {
		for s := range sources {
			g.Source = s
		}
	}
	for k := range windows {
		if topics[k.topic] && !has[k] {
			g.NoHistory = append(g.NoHistory, PartitionRef{k.topic, k.partition})
		}
	}
	sort.Slice(g.NoHistory, func(i, j int) bool {
		return lessTP(tp{g.NoHistory[i].Topic, g.NoHistory[i].Partition}, tp{g.NoHistory[j].Topic, g.NoHistory[j].Partition})
	})
}

func (w PartitionWindow) tp() tp { return tp{w.Topic, w.Partition} }
func (p GroupPartition) tp() tp  { return tp{p.Topic, p.Partition} }

func lessTP(a, b tp) bool {
	if a.topic != b.topic {
		return a.topic < b.topic
	}
	return a.partition < b.partition
}

func timePtr(t time.Time) *time.Time { return &t }

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
