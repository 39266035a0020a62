package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaFlags are the usual client settings for a cluster Amber talks to
// directly (restore's target, backfill's source).
type kafkaFlags struct {
	bootstrap listFlag
	tls       tlsFlags
	saslMech  string
	saslUser  string
	saslPass  string
}

func (k *kafkaFlags) register(fs *flag.FlagSet) {
	fs.Var(&k.bootstrap, "bootstrap", "the cluster's brokers, HOST:PORT, comma-separated (required)")
	fs.BoolVar(&k.tls.enable, "tls", false, "speak TLS to the cluster")
	fs.StringVar(&k.tls.ca, "tls-ca", "", "PEM CA bundle to verify brokers; implies --tls")
	fs.StringVar(&k.tls.cert, "tls-cert", "", "PEM client certificate (mTLS); implies --tls")
	fs.StringVar(&k.tls.key, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&k.tls.serverName, "tls-server-name", "", "name to verify in broker certificates")
	fs.BoolVar(&k.tls.insecure, "tls-insecure-skip-verify", false, "do not verify broker certificates (testing only)")
	fs.StringVar(&k.saslMech, "sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&k.saslUser, "sasl-user", "", "SASL user")
	fs.StringVar(&k.saslPass, "sasl-password", "", "SASL password (default: $AMBER_SASL_PASSWORD)")
}

// client builds a franz-go client from the flags plus opts.
func (k *kafkaFlags) client(opts ...kgo.Opt) (*kgo.Client, error) {
	if len(k.bootstrap) == 0 {
		return nil, usagef("--bootstrap is required")
	}
	all := []kgo.Opt{kgo.SeedBrokers(k.bootstrap...), kgo.ClientID("amber")}
	var tc *tls.Config
	var errs []error
	tc, err := k.tls.clientConfig()
	errs = append(errs, err)
	if tc != nil {
		all = append(all, kgo.DialTLSConfig(tc))
	}
	pass := k.saslPass
	if pass == "" {
		pass = os.Getenv("AMBER_SASL_PASSWORD")
	}
	switch strings.ToUpper(k.saslMech) {
	case "":
	case "PLAIN":
		all = append(all, kgo.SASL(plain.Auth{User: k.saslUser, Pass: pass}.AsMechanism()))
	case "SCRAM-SHA-256":
		all = append(all, kgo.SASL(scram.Auth{User: k.saslUser, Pass: pass}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		all = append(all, kgo.SASL(scram.Auth{User: k.saslUser, Pass: pass}.AsSha512Mechanism()))
	default:
		errs = append(errs, usagef("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", k.saslMech))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}
