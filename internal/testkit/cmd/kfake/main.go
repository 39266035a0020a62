// Command kfake runs franz-go's fake Kafka cluster (kfake) as its own process,
// for non-Go clients and benchmarks that need a broker outside the test
// binary. Upstream's main.go is behind a build tag, listens on fixed ports and
// serves pprof on :6060; this one is configured by flags and binds only
// 127.0.0.1.
//
// When the cluster is ready it prints one JSON line on stdout:
//
//	{"addrs":["127.0.0.1:40001","127.0.0.1:40002","127.0.0.1:40003"]}
//
// and then runs until SIGTERM or SIGINT.
//
// Example:
//
//	kfake -brokers 3 -ports 0 -seed-topic orders:6 -broker-config log.cleaner.backoff.ms=1000
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Ready is the JSON line printed on stdout once the brokers listen.
type Ready struct {
	Addrs []string `json:"addrs"`
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kfake: %v\n", err)
		os.Exit(2)
	}
}

func run() error {
	var (
		brokers          = flag.Int("brokers", 3, "number of brokers (ignored when -ports lists explicit ports)")
		ports            = flag.String("ports", "0", "comma-separated listen ports, one per broker; 0 picks ephemeral ports")
		dataDir          = flag.String("data-dir", "", "persist the cluster's state in this directory (default: in memory)")
		syncWrites       = flag.Bool("sync-writes", false, "with -data-dir, fsync every write")
		blackholeProduce = flag.Bool("blackhole-produce", false, "accept produce requests but discard the records (for produce benchmarks)")
		autoCreate       = flag.Bool("auto-create-topics", false, "allow topic auto-creation through Metadata requests")
		defaultParts     = flag.Int("default-partitions", 0, "partitions of auto-created topics and -seed-topic NAME without a count (0: kfake's default)")
		logLevel         = flag.String("log-level", "none", "kfake log level on stderr: none, error, warn, info, debug")
		seedTopics       repeated
		brokerConfigs    repeated
	)
	flag.Var(&seedTopics, "seed-topic", "create topic NAME[:PARTITIONS] at start (repeatable)")
	flag.Var(&brokerConfigs, "broker-config", "broker config KEY=VALUE (repeatable)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}

	opts := []kfake.Opt{kfake.NumBrokers(*brokers)}
	if *brokers < 1 {
		return fmt.Errorf("-brokers must be at least 1, got %d", *brokers)
	}

	if p := strings.TrimSpace(*ports); p != "" && p != "0" {
		var list []int
		for _, s := range strings.Split(p, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("-ports: invalid port %q", s)
			}
			list = append(list, n)
		}
		opts = append(opts, kfake.Ports(list...))
	}

	for _, st := range seedTopics {
		name, partsStr, hasParts := strings.Cut(st, ":")
		if name == "" {
			return fmt.Errorf("-seed-topic %q: empty topic name", st)
		}
		parts := int64(-1) // kfake: non-positive means DefaultNumPartitions
		if hasParts {
			var err error
			parts, err = strconv.ParseInt(partsStr, 10, 32)
			if err != nil || parts < 1 {
				return fmt.Errorf("-seed-topic %q: partitions must be a positive integer", st)
			}
		}
		opts = append(opts, kfake.SeedTopics(int32(parts), name))
	}

	if len(brokerConfigs) > 0 {
		cfgs := make(map[string]string, len(brokerConfigs))
		for _, kv := range brokerConfigs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("-broker-config %q: expected KEY=VALUE", kv)
			}
			cfgs[k] = v
		}
		opts = append(opts, kfake.BrokerConfigs(cfgs))
	}

	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
		if *syncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	} else if *syncWrites {
		return fmt.Errorf("-sync-writes needs -data-dir")
	}
	if *blackholeProduce {
		opts = append(opts, kfake.BlackholeProduce())
	}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if *defaultParts > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(*defaultParts))
	}

	var level kfake.LogLevel
	switch strings.ToLower(*logLevel) {
	case "none", "":
		level = kfake.LogLevelNone
	case "error":
		level = kfake.LogLevelError
	case "warn":
		level = kfake.LogLevelWarn
	case "info":
		level = kfake.LogLevelInfo
	case "debug":
		level = kfake.LogLevelDebug
	default:
		return fmt.Errorf("-log-level %q: want none, error, warn, info or debug", *logLevel)
	}
	opts = append(opts, kfake.WithLogger(kfake.BasicLogger(os.Stderr, level)))

	// Subscribe before announcing readiness, so a signal sent right after
	// the ready line is never lost.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}

	line, err := json.Marshal(Ready{Addrs: c.ListenAddrs()})
	if err != nil {
		c.Close()
		return err
	}
	if _, err := fmt.Fprintf(os.Stdout, "%s\n", line); err != nil {
		c.Close()
		return fmt.Errorf("write ready line: %w", err)
	}

	<-sigs
	// Close flushes persisted state; a second signal forces the exit.
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-sigs:
		fmt.Fprintln(os.Stderr, "kfake: forced shutdown")
		os.Exit(1)
	}
	return nil
}
