package restore

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/amber-kafka/amber/archive"
)

// Defaults for Options.
const (
	DefaultParallelism = 4
)

// TopicMapping maps archived topics to target topics: "SRC" (same name),
// "SRC:DST", or a pattern "orders\..*:restored.$0" / "(orders)\.(.*):$1-restored.$2"
// (SRC a regular expression matched against the whole name, DST expanded
// with its groups).
type TopicMapping struct {
	re     *regexp.Regexp
	target string
	text   string
}

// ParseTopicMapping parses SRC[:DST].
func ParseTopicMapping(s string) (TopicMapping, error) {
	src, dst, renamed := strings.Cut(s, ":")
	if src == "" || (renamed && dst == "") {
		return TopicMapping{}, fmt.Errorf("topic %q: want SRC or SRC:DST", s)
	}
	if !renamed {
		dst = "$0"
	}
	literal := regexp.QuoteMeta(src) == src
	pattern := "^(?:" + src + ")$"
	if literal {
		pattern = "^" + regexp.QuoteMeta(src) + "$"
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return TopicMapping{}, fmt.Errorf("topic %q: %w", s, err)
	}
	return TopicMapping{re: re, target: dst, text: s}, nil
}

// MustTopicMapping is ParseTopicMapping for constants.
func MustTopicMapping(s string) TopicMapping {
	m, err := ParseTopicMapping(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Map returns the target for an archived topic, if the mapping matches it.
func (m TopicMapping) Map(source string) (string, bool) {
	if !m.re.MatchString(source) {
		return "", false
	}
	if !strings.Contains(m.target, "$") {
		return m.target, true
	}
	return m.re.ReplaceAllString(source, strings.ReplaceAll(m.target, "$0", "${0}")), true
}

func (m TopicMapping) String() string { return m.text }

// GroupMapping moves a consumer group's position: Source's committed
// offsets in the archive, translated, committed for Target.
type GroupMapping struct{ Source, Target string }

// ParseGroupMapping parses SRC[:DST].
func ParseGroupMapping(s string) (GroupMapping, error) {
	src, dst, renamed := strings.Cut(s, ":")
	if src == "" || (renamed && dst == "") {
		return GroupMapping{}, fmt.Errorf("group %q: want SRC or SRC:DST", s)
	}
	if !renamed {
		dst = src
	}
	return GroupMapping{Source: src, Target: dst}, nil
}

// Options configure a restore.
type Options struct {
	// Archive to restore from. Required.
	Archive *archive.Archive
	// Client is connected to the target cluster. Required.
	Client *kgo.Client
	// Topics selects and maps archived topics. Required.
	Topics []TopicMapping

	// Since and Until cut by ack time (when the broker acknowledged each
	// batch), or by record timestamp with ByRecordTime. Zero: no cut.
	// Until is inclusive, Since inclusive.
	Since, Until time.Time
	ByRecordTime bool
	// UntilOffset, if ≥ 0, restores only source offsets below it, in
	// Partition (or every partition if Partition < 0).
	UntilOffset int64
	Partition   int32

	// IncludeAborted restores aborted transactions' records, and those of
	// transactions whose outcome the archive does not know, as plain
	// records. Default: neither is restored.
	IncludeAborted bool
	// OffsetHeader, if set, adds each record's source offset as a header
	// of this name (an 8-byte big-endian integer). It re-encodes every
	// batch.
	OffsetHeader string

	// Groups to translate and commit on the target.
	Groups []GroupMapping

	// ReplicationFactor for created topics; -1: the broker's default.
	ReplicationFactor int16
	// Configs override archived topic configs for created topics.
	Configs map[string]string
	// Force writes into partitions that already hold other data.
	Force bool
	// DryRun plans and reports, writing nothing.
	DryRun bool

	// ThrottleBytes bounds the write rate, bytes per second; 0: none.
	ThrottleBytes float64
	// Parallelism is how many partitions restore at once. Default
	// DefaultParallelism.
	Parallelism int
	// Progress, if set, is called as batches are written (or, in a dry
	// run, planned).
	Progress func(bytes, records int64)
	Logger   *zap.Logger
}

func (o *Options) ensureDefaults() {
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Progress == nil {
		o.Progress = func(int64, int64) {}
	}
}

// Validate reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Archive == nil {
		errs = append(errs, errors.New("no archive"))
	}
	if o.Client == nil {
		errs = append(errs, errors.New("no target cluster client"))
	}
	if len(o.Topics) == 0 {
		errs = append(errs, errors.New("no topic to restore: give --topic SRC[:DST]"))
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && o.Until.Before(o.Since) {
		errs = append(errs, fmt.Errorf("--until %s is before --since %s", o.Until.Format(time.RFC3339), o.Since.Format(time.RFC3339)))
	}
	if o.UntilOffset < -1 {
		errs = append(errs, fmt.Errorf("--until-offset %d is negative", o.UntilOffset))
	}
	if o.ThrottleBytes < 0 {
		errs = append(errs, errors.New("--throttle is negative"))
	}
	return errors.Join(errs...)
}

var (
	// ErrTargetNotEmpty is returned for a target partition holding data
	// this restore did not write.
	ErrTargetNotEmpty = errors.New("target partition holds other data")
	// ErrNoTopics is returned when no archived topic matches.
	ErrNoTopics = errors.New("no archived topic matches")
	// ErrGroupActive is returned for a target group with members.
	ErrGroupActive = errors.New("target consumer group has active members")
)
