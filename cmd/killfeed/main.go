// Command killfeed runs the killmail relay. See README.md.
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
		os.Exit(1)
	}
}

// run parses args and the KILLFEED_* environment and runs the command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "import" {
		return runImport(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "edge" {
		return runEdge(ctx, args[1:], getenv, stderr)
	}
	return serve(ctx, args, getenv, stderr)
}
