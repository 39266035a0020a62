package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Configuration comes from three places, each overriding the one before:
//
//	amber.yaml (--config FILE)   keys are flag names:  listen: 0.0.0.0:9092
//	                                                  upstream: [kafka-0:9092, kafka-1:9092]
//	environment                  AMBER_ + the flag name in capitals, dashes
//	                             as underscores: AMBER_LISTEN, AMBER_UPSTREAM
//	command-line flags           --listen 0.0.0.0:9092
//
// applyConfig runs after flags are parsed: a flag given on the command line
// keeps its value; any other takes the environment's, else the file's.
func applyConfig(fs *flag.FlagSet, path string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	file := map[string]any{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return usagef("config %s: %v", path, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil || k == "config" {
				return usagef("config %s: unknown setting %q (settings are the flag names of amber %s --help)", path, k, fs.Name())
			}
		}
	}
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" || f.Name == "print-config" {
			return
		}
		env := "AMBER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		val, ok := os.LookupEnv(env)
		source := env
		if !ok {
			v, inFile := file[f.Name]
			if !inFile {
				return
			}
			val, source = yamlValue(v), path+": "+f.Name
		}
		if err := fs.Set(f.Name, val); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", source, err))
		}
	})
	if len(errs) > 0 {
		return usagef("%s", strings.Join(errs, "; "))
	}
	return nil
}

// yamlValue turns a YAML value into a flag string; lists join with commas.
func yamlValue(v any) string {
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// secretFlag reports whether a flag holds a secret, masked when printed.
func secretFlag(name string) bool {
	for _, s := range []string{"password", "secret", "token"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// printConfig writes the effective configuration as YAML (loadable with
// --config), secrets masked.
func printConfig(w io.Writer, fs *flag.FlagSet) {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" && f.Name != "print-config" {
			names = append(names, f.Name)
		}
	})
	sort.Strings(names)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# effective configuration of amber %s (file < AMBER_* environment < flags)\n", strings.TrimPrefix(fs.Name(), "amber "))
	for _, n := range names {
		v := fs.Lookup(n).Value.String()
		if secretFlag(n) && v != "" {
			v = "********"
		}
		out, _ := yaml.Marshal(map[string]string{n: v})
		buf.Write(out)
	}
	for _, env := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION", "AMBER_SASL_PASSWORD", "AMBER_BACKFILL_SASL_PASSWORD"} {
		if v, ok := os.LookupEnv(env); ok {
			if env != "AWS_ENDPOINT_URL" && env != "AWS_REGION" {
				v = "********"
			}
			fmt.Fprintf(&buf, "# %s=%s (environment)\n", env, v)
		}
	}
	w.Write(buf.Bytes())
}
