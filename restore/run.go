package restore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/amber-kafka/amber/archive"
)

// Report is what a restore did (or, dry, would do). It is the JSON of
// --report FILE.
type Report struct {
	DryRun bool          `json:"dry_run"`
	Since  *time.Time    `json:"since,omitempty"`
	Until  *time.Time    `json:"until,omitempty"`
	Cut    string        `json:"cut"` // ack-time or record-time
	Topics []TopicReport `json:"topics"`
	Groups []GroupReport `json:"groups"`
}

// TopicReport is one restored topic.
type TopicReport struct {
	Source  string `json:"source"`
	Target  string `json:"target"`
	Created bool   `json:"created"`
	// LogAppendTime: the source used broker append time, restored as
	// each record's timestamp.
	LogAppendTime bool              `json:"log_append_time"`
	Configs       map[string]string `json:"configs,omitempty"`
	Partitions    []PartitionReport `json:"partitions"`
	// Notes say what an operator should know, e.g. that the topic was
	// deleted and created again, and which of the two was restored.
	Notes []string `json:"notes,omitempty"`
}

// PartitionReport is one restored partition.
type PartitionReport struct {
	Partition  int32            `json:"partition"`
	Records    int64            `json:"records"`
	Batches    int64            `json:"batches"`
	Bytes      int64            `json:"bytes"`
	Reencoded  int64            `json:"reencoded_batches"`
	Resumed    int64            `json:"resumed_from_offset,omitempty"`
	Skipped    map[string]int64 `json:"skipped_records,omitempty"`
	OffsetMap  []OffsetRange    `json:"offset_map"`
	TargetEnd  int64            `json:"target_end_offset"`
	SourceHigh int64            `json:"source_end_offset"`
	// Missing are source offsets below SourceHigh that the archive does
	// not hold, so the restore could not write them: known losses (the
	// cluster deleted or compacted them before a backfill fetched them;
	// their reason) and holes (reason "hole": produced around the proxy or
	// transaction markers, until a backfill fetches them).
	Missing []archive.LossRange `json:"missing,omitempty"`
}

// GroupReport is one consumer group's translated position.
type GroupReport struct {
	Source  string        `json:"source"`
	Target  string        `json:"target"`
	Offsets []GroupOffset `json:"offsets"`
}

// GroupOffset is one partition's committed offset, before and after.
type GroupOffset struct {
	SourceTopic string `json:"source_topic"`
	TargetTopic string `json:"target_topic"`
	Partition   int32  `json:"partition"`
	Source      int64  `json:"source_offset"`
	Target      int64  `json:"target_offset"`
}

type topicJob struct {
	rep   *TopicReport
	parts []int32
}

// Run restores. On error the report says what was done before it.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{DryRun: o.DryRun, Cut: "ack-time"}
	if o.ByRecordTime {
		rep.Cut = "record-time"
	}
	if !o.Since.IsZero() {
		rep.Since = &o.Since
	}
	if !o.Until.IsZero() {
		rep.Until = &o.Until
	}
	hist, err := loadHistory(ctx, o.Archive, o.Until)
	if err != nil {
		return nil, fmt.Errorf("read archived history: %w", err)
	}
	jobs, err := planTopics(&o, hist)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(o.Client)
	if err := prepareTargets(ctx, &o, adm, hist, jobs); err != nil {
		return rep, err
	}
	for _, j := range jobs {
		rep.Topics = append(rep.Topics, *j.rep)
	}
	var prod producer
	if !o.DryRun {
		if prod, err = initProducer(ctx, &o); err != nil {
			return rep, err
		}
	}
	// wctx stops every partition, and the requests in flight, once one
	// fails.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := newTarget(wctx, o.Client)
	lim := &limiter{rate: o.ThrottleBytes}

	type work struct {
		topic int
		part  int32
	}
	var queue []work
	for i, j := range jobs {
		for _, p := range j.parts {
			queue = append(queue, work{i, p})
		}
	}
	results := make([][]PartitionReport, len(jobs))
	for i, j := range jobs {
		results[i] = make([]PartitionReport, len(j.parts))
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		next = make(chan work)
	)
	for w := 0; w < o.Parallelism; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wk := range next {
				j := jobs[wk.topic]
				pr, err := restorePartition(wctx, &o, hist, t, lim, prod, j.rep.Source, j.rep.Target, wk.part)
				mu.Lock()
				for k, p := range j.parts {
					if p == wk.part {
						results[wk.topic][k] = pr
					}
				}
				// After a first failure the others are cancelled: their
				// "context canceled" says nothing the first does not.
				if err != nil && (len(errs) == 0 || wctx.Err() == nil || ctx.Err() != nil) {
					errs = append(errs, err)
				}
				if err != nil {
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	for _, wk := range queue {
		select {
		case next <- wk:
		case <-wctx.Done():
		}
	}
	close(next)
	wg.Wait()
	for i := range jobs {
		rep.Topics[i].Partitions = results[i]
	}
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	groups, err := translateGroups(ctx, &o, adm, hist, rep)
	rep.Groups = groups
	return rep, err
}

// planTopics matches archived topics against the mappings.
func planTopics(o *Options, hist *history) ([]*topicJob, error) {
	parts := map[string][]int32{}
	for _, c := range o.Archive.Coverage() {
		parts[c.Topic] = append(parts[c.Topic], c.Partition)
	}
	sources := make([]string, 0, len(parts))
	for s := range parts {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	var jobs []*topicJob
	targets := map[string]string{}
	for _, src := range sources {
		for _, m := range o.Topics {
			dst, ok := m.Map(src)
			if !ok {
				continue
			}
			if other, dup := targets[dst]; dup {
				return nil, fmt.Errorf("archived topics %s and %s both map to %s", other, src, dst)
			}
			targets[dst] = src
			ps := parts[src]
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			if o.Partition >= 0 && o.UntilOffset >= 0 {
				ps = []int32{o.Partition}
			}
			rep := &TopicReport{Source: src, Target: dst}
			if born := hist.incarnation(src, o.Until); !born.IsZero() {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s was deleted at %s and created again: restoring the topic archived after that (--until before it restores the deleted one)",
					src, born.UTC().Format(time.RFC3339Nano)))
			}
			if gone := hist.deletedAfter(src, o.Until); !gone.IsZero() {
				rep.Notes = append(rep.Notes, fmt.Sprintf("restoring %s as it was before its deletion at %s", src, gone.UTC().Format(time.RFC3339Nano)))
			}
			jobs = append(jobs, &topicJob{rep: rep, parts: ps})
			break
		}
	}
	if len(jobs) == 0 {
		var names []string
		for _, m := range o.Topics {
			names = append(names, m.String())
		}
		return nil, fmt.Errorf("%w %v: the archive holds %d topics (amber ls shows them)", ErrNoTopics, names, len(sources))
	}
	return jobs, nil
}

// prepareTargets checks target topics and creates the missing ones with
// the archived partition count and configs.
func prepareTargets(ctx context.Context, o *Options, adm *kadm.Client, hist *history, jobs []*topicJob) error {
	var names []string
	for _, j := range jobs {
		names = append(names, j.rep.Target)
	}
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list target topics: %w", err)
	}
	for _, j := range jobs {
		need := j.parts[len(j.parts)-1] + 1
		if n := hist.partitionCount(j.rep.Source); n > need {
			need = n
		}
		configs := hist.topicConfigs(j.rep.Source, o.Until)
		if v := configs["message.timestamp.type"]; v != nil && *v == "LogAppendTime" {
			j.rep.LogAppendTime = true
		}
		if td, ok := existing[j.rep.Target]; ok && td.Err == nil {
			if have := int32(len(td.Partitions)); have < need {
				return fmt.Errorf("target topic %s has %d partitions, the archive has %d: add partitions to it or restore into a new topic", j.rep.Target, have, need)
			}
			continue
		}
		// The restore carries each record's original time, so the target
		// must keep the times it is given.
		delete(configs, "message.timestamp.type")
		for k, v := range o.Configs {
			configs[k] = kmsg.StringPtr(v)
		}
		j.rep.Configs = map[string]string{}
		for k, v := range configs {
			if v != nil {
				j.rep.Configs[k] = *v
			}
		}
		j.rep.Created = true
		if o.DryRun {
			continue
		}
		rf := o.ReplicationFactor
		if rf == 0 {
			rf = -1
		}
		resp, err := adm.CreateTopic(ctx, need, rf, configs, j.rep.Target)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create target topic %s (%d partitions): %w", j.rep.Target, need, err)
		}
		o.Logger.Info("created target topic", zap.String("topic", j.rep.Target), zap.Int32("partitions", need))
	}
	return nil
}

func initProducer(ctx context.Context, o *Options) (producer, error) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp, err := req.RequestWith(ctx, o.Client)
	if err != nil {
		return producer{}, fmt.Errorf("init producer id on the target: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return producer{}, fmt.Errorf("init producer id on the target: %w", err)
	}
	return producer{resp.ProducerID, resp.ProducerEpoch}, nil
}

// restorePartition walks one archived partition and writes what the cuts
// and transactions select.
func restorePartition(ctx context.Context, o *Options, hist *history, t *target, lim *limiter, prod producer, src, dst string, p int32) (PartitionReport, error) {
	pr := PartitionReport{Partition: p}
	start, end, err := offsets(ctx, o, dst, p)
	if err != nil && !(o.DryRun && errors.Is(err, kerr.UnknownTopicOrPartition)) {
		return pr, err
	}
	w := &partWriter{o: o, t: t, prod: prod, topic: dst, partition: p, lim: lim, dry: o.DryRun, cum: 0}
	if end > 0 {
		if o.Force {
			w.cum = end // appended after what is there
		} else if start > 0 {
			return pr, fmt.Errorf("%w: %s/%d starts at offset %d (records deleted): restore into an empty topic, or give --force", ErrTargetNotEmpty, dst, p, start)
		} else {
			w.resumeAt = end
		}
	}
	sel := newSelector(o, hist, p, func(st *step) error { return w.add(ctx, st) })
	var high int64
	err = o.Archive.ReadPartitionAckedAfter(ctx, src, p, hist.incarnation(src, o.Until), func(b *archive.Batch) error {
		high = max(high, b.BaseOffset)
		return sel.push(b)
	})
	if err == nil {
		err = sel.finish()
	}
	if err == nil && !o.DryRun {
		err = w.flush(ctx)
	}
	if err != nil {
		w.settleAcked()
	}
	if err == nil && w.resumeAt > 0 && !w.verified {
		err = fmt.Errorf("%w: %s/%d holds %d offsets, more than this restore writes there (give --force to append, or restore elsewhere)", ErrTargetNotEmpty, dst, p, w.resumeAt)
	}
	pr.Records, pr.Batches, pr.Bytes, pr.Reencoded = w.records, w.batches, w.bytes, w.reenc
	pr.OffsetMap = w.omap
	if pr.OffsetMap == nil {
		pr.OffsetMap = []OffsetRange{}
	}
	if w.resumeAt > 0 {
		pr.Resumed = w.resumeAt
	}
	if len(sel.skipped) > 0 {
		pr.Skipped = sel.skipped
	}
	if n := len(w.omap); n > 0 {
		last := w.omap[n-1]
		pr.TargetEnd = last.TargetStart + last.SourceEnd - last.SourceStart
		pr.SourceHigh = last.SourceEnd
	} else {
		pr.TargetEnd = end
	}
	if err != nil {
		return pr, fmt.Errorf("restore %s/%d into %s/%d: %w", src, p, dst, p, err)
	}
	pr.Missing = hist.missing(src, p, pr.SourceHigh)
	return pr, nil
}

// offsets returns a target partition's log start and end, waiting a little
// for a topic just created to show up in metadata.
func offsets(ctx context.Context, o *Options, topic string, p int32) (int64, int64, error) {
	for attempt := 0; ; attempt++ {
		s, e, err := offsetsOnce(ctx, o, topic, p)
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || attempt >= 30 || o.DryRun {
			return s, e, err
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}

func offsetsOnce(ctx context.Context, o *Options, topic string, p int32) (int64, int64, error) {
	adm := kadm.NewClient(o.Client)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	s, ok1 := starts.Lookup(topic, p)
	e, ok2 := ends.Lookup(topic, p)
	if !ok1 || !ok2 {
		return 0, 0, kerr.UnknownTopicOrPartition
	}
	if s.Err != nil {
		return 0, 0, s.Err
	}
	if e.Err != nil {
		return 0, 0, e.Err
	}
	return s.Offset, e.Offset, nil
}

// translateGroups commits, for each group, the target offsets matching its
// archived position at the cut: the target offset of the first restored
// record at or after the source committed offset.
func translateGroups(ctx context.Context, o *Options, adm *kadm.Client, hist *history, rep *Report) ([]GroupReport, error) {
	var out []GroupReport
	for _, g := range o.Groups {
		gr := GroupReport{Source: g.Source, Target: g.Target, Offsets: []GroupOffset{}}
		src := hist.groupOffsets(g.Source, o.Until)
		commit := kadm.Offsets{}
		for _, t := range rep.Topics {
			for _, p := range t.Partitions {
				so, ok := src[t.Source][p.Partition]
				if !ok {
					continue
				}
				to := translate(p, so)
				gr.Offsets = append(gr.Offsets, GroupOffset{SourceTopic: t.Source, TargetTopic: t.Target, Partition: p.Partition, Source: so, Target: to})
				commit.Add(kadm.Offset{Topic: t.Target, Partition: p.Partition, At: to, LeaderEpoch: -1})
			}
		}
		out = append(out, gr)
		if o.DryRun || len(gr.Offsets) == 0 {
			continue
		}
		described, err := adm.DescribeGroups(ctx, g.Target)
		if err != nil {
			return out, fmt.Errorf("describe target group %s: %w", g.Target, err)
		}
		if d, ok := described[g.Target]; ok && d.Err == nil && len(d.Members) > 0 {
			return out, fmt.Errorf("%w: %s has %d members (state %s): stop its consumers, then run the restore again (it resumes)", ErrGroupActive, g.Target, len(d.Members), d.State)
		}
		resp, err := adm.CommitOffsets(ctx, g.Target, commit)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return out, fmt.Errorf("commit offsets for group %s: %w", g.Target, err)
		}
	}
	return out, nil
}

// translate maps a source committed offset (the next record to consume)
// through a partition's offset map.
func translate(p PartitionReport, committed int64) int64 {
	for _, r := range p.OffsetMap {
		if committed < r.SourceStart {
			return r.TargetStart // the next restored record is this range's first
		}
		if committed < r.SourceEnd {
			return r.TargetStart + committed - r.SourceStart
		}
	}
	return p.TargetEnd
}
