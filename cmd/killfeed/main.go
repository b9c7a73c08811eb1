// Command killfeed runs the killmail relay. See README.md and docs/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return // the usage was printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "killfeed:", err)
		os.Exit(exitCode(err))
	}
}

// environ lists the environment, for the warning about unknown KILLFEED_*
// variables (getenv reads the settings).
var environ = os.Environ

// run parses args and the KILLFEED_* environment and runs the command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatch(ctx, args, getenv, stdout, stderr)
}
