package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
)

// usage is the top of `killfeed help`; the flags of serve follow it.
const usage = `usage: killfeed [serve] [flags]
       killfeed import (--to URL | --data-dir DIR) [flags] FILE…
       killfeed edge --core HOST:PORT [flags]
       killfeed version
       killfeed help [command]

Commands:
  serve    run the killmail relay (the default when no command is given)
  import   import JSON Lines files of killmails (killfeed help import)
  edge     serve the API from a core over Proto.Actor remote (killfeed help edge)
  version  print the version and the build's VCS revision
  help     print this help, or a command's

`

// usageError is a command line that names no known command, or gives one
// arguments it does not take: main prints the usage and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode is the process exit status for what run returned.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// command splits args into the subcommand and its arguments: no command,
// or a flag first, means serve.
func command(args []string) (string, []string) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "serve", args
	}
	return args[0], args[1:]
}

// dispatch runs the subcommand named by args.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd, rest := command(args)
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stderr)
	case "import":
		return runImport(ctx, rest, getenv, stdout, stderr)
	case "edge":
		return runEdge(ctx, rest, getenv, stderr)
	case "version":
		if len(rest) > 0 {
			fmt.Fprint(stderr, usage)
			return usagef("version: takes no arguments, got %q", strings.Join(rest, " "))
		}
		printVersion(stdout)
		return nil
	case "help":
		return help(ctx, rest, getenv, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q (want serve, import, edge, version or help)", cmd)
}

// help prints the usage and serve's flags, or a command's help, to stdout.
func help(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	topic := "serve"
	if len(args) > 0 {
		topic = args[0]
	}
	if len(args) > 1 {
		fmt.Fprint(stderr, usage)
		return usagef("help: takes at most one command, got %q", strings.Join(args, " "))
	}
	var err error
	switch topic {
	case "serve":
		err = serve(ctx, []string{"--help"}, getenv, stdout)
	case "import":
		err = runImport(ctx, []string{"--help"}, getenv, stdout, stdout)
	case "edge":
		err = runEdge(ctx, []string{"--help"}, getenv, stdout)
	case "version", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usagef("help: unknown command %q", topic)
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// serveUsage prints the usage and every flag of fs with its environment
// variable.
func serveUsage(fs *flag.FlagSet) func() {
	return func() {
		w := fs.Output()
		fmt.Fprint(w, usage)
		fmt.Fprint(w, "Flags of serve (each also read from its environment variable when not given):\n")
		printFlags(w, fs)
	}
}

// printFlags lists the flags of fs: name, value type, environment variable,
// then the usage and the default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, text := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(w, "%s  (%s)\n      %s", line, envName(f.Name), text)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" && f.DefValue != "[]" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// buildVersion, when set at build time (-ldflags "-X main.buildVersion=v1.2.0"),
// is printed instead of the module version, which is "(devel)" for a build
// from a checkout.
var buildVersion string

// printVersion prints the module version and the VCS revision, time and
// modified flag the binary was built with.
func printVersion(w io.Writer) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(w, "killfeed (no build information)")
		return
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	v := bi.Main.Version
	if buildVersion != "" {
		v = buildVersion
	}
	fmt.Fprintf(w, "killfeed %s\n", v)
	fmt.Fprintf(w, "module   %s\n", bi.Main.Path)
	rev := settings["vcs.revision"]
	if rev == "" {
		rev = "unknown"
	}
	if settings["vcs.modified"] == "true" {
		rev += " (modified)"
	}
	fmt.Fprintf(w, "revision %s\n", rev)
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(w, "time     %s\n", t)
	}
	fmt.Fprintf(w, "go       %s\n", bi.GoVersion)
}

// invertedBool is a bool flag that sets *p to its negation: --metrics=false
// sets Config.NoMetrics.
type invertedBool struct{ p *bool }

func (b invertedBool) String() string {
	if b.p == nil {
		return "true"
	}
	return fmt.Sprint(!*b.p)
}

func (b invertedBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*b.p = !v
	return nil
}

func (b invertedBool) IsBoolFlag() bool { return true }
