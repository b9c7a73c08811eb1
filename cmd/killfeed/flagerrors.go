package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// badValue matches the flag package's error for a value that does not
// parse: `invalid value "often" for flag -gc-interval: parse error`.
var badValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([\w-]+): `)

// expected says what a flag's value must look like, from its type.
func expected(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return "true or false"
	}
	typ, _ := flag.UnquoteUsage(f)
	switch typ {
	case "duration":
		return "a duration with its unit, such as 500ms, 30s, 5m or 1h30m"
	case "int", "uint":
		return "a whole number, such as 10"
	case "float":
		return "a number, such as 0.5"
	}
	return ""
}

// parseFlags parses args into fs; an unknown flag or a value that does not
// parse is a usage error (exit 2) whose text says what the flag expects.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	if m := badValue.FindStringSubmatch(err.Error()); m != nil {
		if f := fs.Lookup(m[2]); f != nil {
			if want := expected(f); want != "" {
				return usagef("--%s: %q is not %s", f.Name, m[1], want)
			}
		}
	}
	return usagef("%v", err)
}

// setFromEnv sets flag f from its environment variable's value v, saying
// what the flag expects when v does not parse.
func setFromEnv(fs *flag.FlagSet, f *flag.Flag, v string) error {
	if err := fs.Set(f.Name, v); err != nil {
		if want := expected(f); want != "" {
			return fmt.Errorf("%s: %q is not %s", envName(f.Name), v, want)
		}
		return fmt.Errorf("%s: %w", envName(f.Name), err)
	}
	return nil
}

// unknownEnv lists the KILLFEED_* variables of environ that name no flag
// of fs (nor one of the extra names), so that a misspelt setting is not
// ignored in silence.
func unknownEnv(fs *flag.FlagSet, environ []string, extra ...string) []string {
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	for _, e := range extra {
		known[e] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "KILLFEED_") && !known[name] {
			out = append(out, name)
		}
	}
	return out
}

// warnUnknownEnv logs each KILLFEED_* variable that is no setting of the
// command: a misspelt one would otherwise be ignored in silence.
func warnUnknownEnv(logger *slog.Logger, fs *flag.FlagSet, command string) {
	for _, name := range unknownEnv(fs, environ()) {
		logger.Warn("unknown environment variable ignored: no setting of killfeed "+command+" has this name (see killfeed help "+command+")",
			"name", name)
	}
}
