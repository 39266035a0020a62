package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
)

// tlsFlags are the TLS settings of one side (clients or brokers).
type tlsFlags struct {
	enable     bool
	cert, key  string
	ca         string
	serverName string
	insecure   bool
}

// clientSideFlags registers the flags for TLS towards clients.
func (t *tlsFlags) clientSideFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "PEM certificate the listeners present to clients; with --tls-key turns client TLS on")
	fs.StringVar(&t.key, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&t.ca, "tls-client-ca", "", "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)")
}

// upstreamFlags registers the flags for TLS towards brokers.
func (t *tlsFlags) upstreamFlags(fs *flag.FlagSet) {
	fs.BoolVar(&t.enable, "upstream-tls", false, "speak TLS to the brokers")
	fs.StringVar(&t.ca, "upstream-ca", "", "PEM CA bundle to verify brokers (default: system roots); implies --upstream-tls")
	fs.StringVar(&t.cert, "upstream-cert", "", "PEM client certificate for brokers that require mTLS; implies --upstream-tls")
	fs.StringVar(&t.key, "upstream-key", "", "PEM private key for --upstream-cert")
	fs.StringVar(&t.serverName, "upstream-server-name", "", "name to verify in broker certificates (default: each broker's host)")
	fs.BoolVar(&t.insecure, "upstream-insecure-skip-verify", false, "do not verify broker certificates (testing only)")
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}

// serverConfig builds the client-facing TLS config, or nil if TLS is off.
func (t *tlsFlags) serverConfig() (*tls.Config, error) {
	if t.cert == "" && t.key == "" {
		if t.ca != "" {
			return nil, usagef("--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if t.cert == "" || t.key == "" {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if t.ca != "" {
		pool, err := loadPool(t.ca)
		if err != nil {
			return nil, fmt.Errorf("load --tls-client-ca: %w", err)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// clientConfig builds the broker-facing TLS config, or nil if TLS is off.
func (t *tlsFlags) clientConfig() (*tls.Config, error) {
	if !t.enable && t.ca == "" && t.cert == "" && t.key == "" && !t.insecure && t.serverName == "" {
		return nil, nil
	}
	var errs []error
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.serverName, InsecureSkipVerify: t.insecure}
	if t.ca != "" {
		pool, err := loadPool(t.ca)
		if err != nil {
			errs = append(errs, fmt.Errorf("load --upstream-ca: %w", err))
		}
		cfg.RootCAs = pool
	}
	if (t.cert == "") != (t.key == "") {
		errs = append(errs, usagef("--upstream-cert and --upstream-key go together"))
	} else if t.cert != "" {
		pair, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			errs = append(errs, fmt.Errorf("load --upstream-cert/--upstream-key: %w", err))
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, errors.Join(errs...)
}
