package impact

import (
	"fmt"
	"time"
)

// Group and partition statuses: how much of the window a group consumed.
const (
	StatusAll     = "all"     // every record of the window
	StatusPartial = "partial" // some
	StatusNone    = "none"    // none: not affected
)

// Where a group's positions come from.
const (
	SourceCommits   = "commits"   // the commits the proxy saw: exact
	SourceSnapshots = "snapshots" // a backfill's group offset snapshots: coarser
	SourceMixed     = "mixed"     // commits on some partitions, snapshots on others
)

// Report.CommitHistory values.
const (
	HistoryExact     = "exact"     // commits on the window's partitions are archived
	HistorySnapshots = "snapshots" // only backfill snapshots are
	HistoryNone      = "none"      // neither
)

// Window is the analysed time window, by ack time, both ends inclusive.
type Window struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// Report is what Analyze found. It is the JSON `amber impact --json`
// prints.
type Report struct {
	Window Window   `json:"window"`
	Topics []string `json:"topics"`
	// Group is Options.Group: the report is limited to it.
	Group string `json:"group,omitempty"`
	// CommitHistory says what the group answers rest on: HistoryExact,
	// HistorySnapshots or HistoryNone.
	CommitHistory string `json:"commit_history"`
	// Partitions are the partitions with records acknowledged in the
	// window, by topic and partition.
	Partitions []PartitionWindow `json:"partitions"`
	// Groups are the groups with commits (or snapshots) on those
	// partitions, by name, affected or not.
	Groups []Group `json:"groups"`
	// Notes explain what the report cannot say, and what to do about it.
	Notes []string `json:"notes,omitempty"`
}

// PartitionWindow is the window's offsets in one partition.
type PartitionWindow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// FromOffset is the first offset of the window; ToOffset is
	// exclusive.
	FromOffset int64 `json:"from_offset"`
	ToOffset   int64 `json:"to_offset"`
	// Records is how many records the archive holds in the range.
	Records int64 `json:"records"`
	// Unarchived counts offsets in the range the archive does not hold:
	// transaction markers, or records produced around the proxy.
	Unarchived   int64     `json:"unarchived_offsets"`
	FirstAckTime time.Time `json:"first_ack_time"`
	LastAckTime  time.Time `json:"last_ack_time"`
}

// Group is one consumer group's impact.
type Group struct {
	Group string `json:"group"`
	// Affected: the group consumed at least one record of the window.
	Affected bool `json:"affected"`
	// Status is StatusAll when it consumed every record of the window on
	// every partition it has history for, StatusNone when none.
	Status string `json:"status"`
	// Records of the window it consumed, of WindowRecords on the
	// partitions it has history for.
	Records       int64 `json:"records"`
	WindowRecords int64 `json:"window_records"`
	// EnteredAt is when it first committed past the window's first
	// record on any partition; PassedAt when it had committed past the
	// window on every partition (unset until then).
	EnteredAt *time.Time `json:"entered_at,omitempty"`
	PassedAt  *time.Time `json:"passed_at,omitempty"`
	// Source is SourceCommits, SourceSnapshots or SourceMixed.
	Source     string           `json:"source"`
	Partitions []GroupPartition `json:"partitions"`
	// NoHistory are window partitions of the topics this group commits
	// on for which the archive holds neither a commit nor a snapshot of
	// it: unknown.
	NoHistory []PartitionRef `json:"no_history,omitempty"`
	// AbortedTxnCommits and PendingTxnCommits count transactional
	// commits not counted: their transaction aborted, or the archive
	// holds no outcome for it (still open, or ended around the proxy).
	AbortedTxnCommits int `json:"aborted_txn_commits,omitempty"`
	PendingTxnCommits int `json:"pending_txn_commits,omitempty"`
}

// PartitionRef names a partition.
type PartitionRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// GroupPartition is one group's impact on one partition's window.
type GroupPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Status    string `json:"status"`
	Source    string `json:"source"`
	// Consumed is the range of the window the group consumed: from the
	// window's first offset to its highest commit (or the window's end);
	// unset if none.
	Consumed *Range `json:"consumed,omitempty"`
	Records  int64  `json:"records"`
	// Committed is the group's latest counted commit, CommittedAt when it
	// took effect; Highest its highest (above Committed if the group was
	// rewound). -1 when nothing counted.
	Committed   int64      `json:"committed"`
	CommittedAt *time.Time `json:"committed_at,omitempty"`
	Highest     int64      `json:"highest_committed"`
	// EnteredAt is the first commit past the window's first offset,
	// PassedAt the first at or past its end. For SourceSnapshots they are
	// the first snapshots that show it: upper bounds.
	EnteredAt         *time.Time `json:"entered_at,omitempty"`
	PassedAt          *time.Time `json:"passed_at,omitempty"`
	AbortedTxnCommits int        `json:"aborted_txn_commits,omitempty"`
	PendingTxnCommits int        `json:"pending_txn_commits,omitempty"`
}

// Range is an offset range: From inclusive, To exclusive.
type Range struct {
	From int64 `json:"from_offset"`
	To   int64 `json:"to_offset"`
}

// WorkItem is one entry of the compensation work list: a range of a
// partition a group consumed from the window. It is the JSON value of the
// records `amber impact --emit-compensation` writes.
type WorkItem struct {
	// ID is group/topic/partition/from-to: the same item always has the
	// same id, so a consumer of the list can drop the repeats a second
	// run writes.
	ID        string `json:"id"`
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// FromOffset is inclusive, ToOffset exclusive.
	FromOffset int64  `json:"from_offset"`
	ToOffset   int64  `json:"to_offset"`
	Records    int64  `json:"records"`
	Window     Window `json:"window"`
	// Source is where the range comes from (SourceCommits, exact, or
	// SourceSnapshots, coarser).
	Source string `json:"source"`
}

// WorkList is one item per affected group and partition range, by group,
// topic and partition.
func (r *Report) WorkList() []WorkItem {
	var out []WorkItem
	for _, g := range r.Groups {
		for _, p := range g.Partitions {
			if p.Consumed == nil {
				continue
			}
			out = append(out, WorkItem{
				ID:    fmt.Sprintf("%s/%s/%d/%d-%d", g.Group, p.Topic, p.Partition, p.Consumed.From, p.Consumed.To),
				Group: g.Group, Topic: p.Topic, Partition: p.Partition,
				FromOffset: p.Consumed.From, ToOffset: p.Consumed.To, Records: p.Records,
				Window: r.Window, Source: p.Source,
			})
		}
	}
	return out
}

// Affected returns the affected groups.
func (r *Report) Affected() []Group {
	var out []Group
	for _, g := range r.Groups {
		if g.Affected {
			out = append(out, g)
		}
	}
	return out
}
