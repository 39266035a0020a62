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
	sasl      saslFlags
}

// saslFlags authenticate Amber's own client of a cluster: restore's,
// backfill's and verify's, and the proxy's background backfill (whose
// flags have the prefix "backfill-"; the proxy passes its clients' own
// SASL through untouched).
type saslFlags struct {
	prefix string
	mech   string
	user   string
	pass   string
}

func (s *saslFlags) register(fs *flag.FlagSet, prefix string) {
	s.prefix = prefix
	fs.StringVar(&s.mech, prefix+"sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&s.user, prefix+"sasl-user", "", "SASL user")
	fs.StringVar(&s.pass, prefix+"sasl-password", "", "SASL password (default: $AMBER_"+strings.ToUpper(strings.ReplaceAll(prefix, "-", "_"))+"SASL_PASSWORD)")
}

// opt is the kgo option for the flags, nil without a mechanism.
func (s *saslFlags) opt() (kgo.Opt, error) {
	pass := s.pass
	if pass == "" {
		pass = os.Getenv("AMBER_" + strings.ToUpper(strings.ReplaceAll(s.prefix, "-", "_")) + "SASL_PASSWORD")
	}
	switch strings.ToUpper(s.mech) {
	case "":
		if s.user != "" {
			return nil, usagef("--%ssasl-user needs --%ssasl-mechanism", s.prefix, s.prefix)
		}
		return nil, nil
	case "PLAIN":
		return kgo.SASL(plain.Auth{User: s.user, Pass: pass}.AsMechanism()), nil
	case "SCRAM-SHA-256":
		return kgo.SASL(scram.Auth{User: s.user, Pass: pass}.AsSha256Mechanism()), nil
	case "SCRAM-SHA-512":
		return kgo.SASL(scram.Auth{User: s.user, Pass: pass}.AsSha512Mechanism()), nil
	default:
		return nil, usagef("--%ssasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.prefix, s.mech)
	}
}

func (k *kafkaFlags) register(fs *flag.FlagSet) {
	fs.Var(&k.bootstrap, "bootstrap", "the cluster's brokers, HOST:PORT, comma-separated (required)")
	fs.BoolVar(&k.tls.enable, "tls", false, "speak TLS to the cluster")
	fs.StringVar(&k.tls.ca, "tls-ca", "", "PEM CA bundle to verify brokers; implies --tls")
	fs.StringVar(&k.tls.cert, "tls-cert", "", "PEM client certificate (mTLS); implies --tls")
	fs.StringVar(&k.tls.key, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&k.tls.serverName, "tls-server-name", "", "name to verify in broker certificates")
	fs.BoolVar(&k.tls.insecure, "tls-insecure-skip-verify", false, "do not verify broker certificates (testing only)")
	k.sasl.register(fs, "")
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
	so, err := k.sasl.opt()
	errs = append(errs, err)
	if so != nil {
		all = append(all, so)
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
