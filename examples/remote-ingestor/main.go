// Command remote-ingestor sends killmails from JSON Lines files (plain or
// gzip) to a running killfeed over Proto.Actor remote, as an ingestor
// elsewhere in the cluster would:
//
//	killfeed --remote-listen 127.0.0.1:8090 &
//	go run ./examples/remote-ingestor --addr 127.0.0.1:8090 testdata/killmails.jsonl.gz
//
// Each line becomes a remotepb.InsertKillmail sent to the actor named
// "ingest" at --addr; killfeed answers remotepb.InsertKillmailResult. The
// answer travels back over this process's own remote endpoint (--listen),
// so killfeed must be able to reach it. With -v every line's answer is
// printed; the exit status is 1 when any line was refused.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/killfeed/killfeed/ingest/remotepb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "remote-ingestor:", err)
		os.Exit(1)
	}
}

type line struct {
	where string
	json  []byte
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("remote-ingestor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "killfeed's remote address (its --remote-listen)")
	name := fs.String("name", "ingest", "name of killfeed's ingest actor (its --remote-name)")
	listen := fs.String("listen", "127.0.0.1:0", "host:port of this process's remote endpoint, where answers arrive")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for one answer")
	inflight := fs.Int("inflight", 64, "most requests awaiting an answer at once")
	verbose := fs.Bool("v", false, "print every line's answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("no files given")
	}
	host, port, err := splitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}))
	r := remote.NewRemote(system, remote.Configure(host, port))
	r.Start()
	defer func() {
		r.Shutdown(true)
		system.Shutdown()
	}()
	pid := actor.NewPID(*addr, *name)

	type pending struct {
		line
		f *actor.Future
	}
	queue := make(chan pending, max(1, *inflight))
	var sent, inserted, duplicates, refused int
	done := make(chan struct{})
	go func() { // answers, in line order
		defer close(done)
		for p := range queue {
			res, err := p.f.Result()
			var msg string
			switch r, ok := res.(*remotepb.InsertKillmailResult); {
			case err != nil:
				refused++
				msg = "error=" + err.Error()
			case !ok:
				refused++
				msg = fmt.Sprintf("error=unexpected answer %T", res)
			case r.GetError() != "":
				refused++
				msg = "error=" + r.GetError()
			case r.GetDuplicate():
				duplicates++
				msg = fmt.Sprintf("event_id=%d duplicate=true", r.GetEventId())
			default:
				inserted++
				msg = fmt.Sprintf("event_id=%d duplicate=false", r.GetEventId())
			}
			if *verbose || strings.HasPrefix(msg, "error=") {
				fmt.Fprintf(stdout, "%s %s\n", p.where, msg)
			}
		}
	}()
	err = eachLine(ctx, fs.Args(), func(l line) {
		sent++
		f := system.Root.RequestFuture(pid, &remotepb.InsertKillmail{KillmailJson: l.json}, *timeout)
		queue <- pending{l, f}
	})
	close(queue)
	<-done
	fmt.Fprintf(stderr, "sent %d  inserted %d  duplicates %d  refused %d\n", sent, inserted, duplicates, refused)
	if err != nil {
		return err
	}
	if refused > 0 {
		return fmt.Errorf("%d killmails refused", refused)
	}
	return nil
}

// eachLine calls fn with every non-blank line of files, gunzipping files
// that start with the gzip magic.
func eachLine(ctx context.Context, files []string, fn func(line)) error {
	for _, name := range files {
		if err := func() error {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			br := bufio.NewReader(f)
			var r io.Reader = br
			if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
				zr, err := gzip.NewReader(br)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				r = zr
			}
			sc := bufio.NewScanner(r)
			sc.Buffer(nil, 8<<20)
			for n := 1; sc.Scan(); n++ {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if b := bytes.TrimSpace(sc.Bytes()); len(b) > 0 {
					fn(line{fmt.Sprintf("%s:%d", name, n), bytes.Clone(b)})
				}
			}
			if err := sc.Err(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		}(); err != nil {
			return err
		}
	}
	return nil
}
