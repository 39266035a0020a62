package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/amber-kafka/amber/archive"
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
	tc, tlsErr := k.tls.clientConfig()
	all, err := clientOpts(k.bootstrap, "amber", tc, &k.sasl)
	if err := errors.Join(tlsErr, err); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// clientOpts are what every client Amber makes of a cluster has: its
// seeds, a client id, TLS (tc; nil for plaintext) and SASL from sasl.
func clientOpts(seeds []string, clientID string, tc *tls.Config, sasl *saslFlags) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID(clientID)}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	so, err := sasl.opt()
	if err != nil {
		return nil, err
	}
	if so != nil {
		opts = append(opts, so)
	}
	return opts, nil
}

// clusterAuth is how backfill and verify reach a cluster: TLS under the
// proxy's --upstream-* names, and SASL.
type clusterAuth struct {
	tls  tlsFlags
	sasl saslFlags
}

func (c *clusterAuth) register(fs *flag.FlagSet) {
	c.tls.upstreamFlags(fs)
	c.sasl.register(fs, "")
}

// client is a client of the brokers at seeds (HOST:PORT each).
func (c *clusterAuth) client(seeds []string) (*kgo.Client, error) {
	for _, s := range seeds {
		if !strings.Contains(s, ":") {
			return nil, usagef("--bootstrap %q: want HOST:PORT", s)
		}
	}
	tc, err := c.tls.clientConfig()
	if err != nil {
		return nil, err
	}
	opts, err := clientOpts(seeds, archive.DefaultBackfillClientID, tc, &c.sasl)
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(opts...)
}
