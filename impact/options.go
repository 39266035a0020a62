package impact

import (
	"errors"
	"fmt"
	"time"

	"github.com/amber-kafka/amber/archive"
)

// Options configure an analysis.
type Options struct {
	// Archive to read. Required.
	Archive *archive.Archive
	// Journal, if set, is a proxy's journal: batches and events it holds
	// that are not uploaded to Archive yet count too.
	Journal *archive.Journal
	// Topics to analyse. Required.
	Topics []string
	// Since and Until bound the window by ack time (when the broker
	// acknowledged each batch), both inclusive. Required.
	Since, Until time.Time
	// Group, if set, limits the report to one consumer group.
	Group string
}

// Validate reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Archive == nil {
		errs = append(errs, fmt.Errorf("%w: give --archive URL", ErrNoArchive))
	}
	if len(o.Topics) == 0 {
		errs = append(errs, errors.New("no topic: give --topic T[,T...]"))
	}
	seen := map[string]bool{}
	for _, t := range o.Topics {
		switch {
		case t == "":
			errs = append(errs, errors.New("empty topic name"))
		case seen[t]:
			errs = append(errs, fmt.Errorf("topic %s given twice", t))
		}
		seen[t] = true
	}
	if o.Since.IsZero() {
		errs = append(errs, errors.New("no window start: give --since TIME (the backup's time)"))
	}
	if o.Until.IsZero() {
		errs = append(errs, errors.New("no window end: give --until TIME (when the data was lost)"))
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && o.Until.Before(o.Since) {
		errs = append(errs, fmt.Errorf("--until %s is before --since %s", o.Until.Format(time.RFC3339Nano), o.Since.Format(time.RFC3339Nano)))
	}
	return errors.Join(errs...)
}
