package pebblestore_test

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/eventlog/pebblestore"
	fx "github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/selection"
)

// The crash specs run the test binary again as a child process (helperEnv
// selects what it does) and kill it or let Pebble end it.
const (
	helperEnv = "PEBBLESTORE_HELPER"
	dirEnv    = "PEBBLESTORE_DIR"
)

// runHelper is the child process: it appends killmails and prints
// "ack <killmail id> <event id> <system id>" for each acknowledged one.
func runHelper(mode string) {
	err := helper(mode, os.Getenv(dirEnv))
	fmt.Fprintln(os.Stderr, "helper returned:", err)
	os.Exit(3)
}

func helper(mode, dir string) error {
	src := fx.Killmails()
	opts := pebblestore.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	faults := &faultFS{match: func(op errorfs.Op) bool {
		return strings.HasSuffix(op.Path, ".log") && op.Kind >= errorfs.OpFileSync && op.Kind <= errorfs.OpFileSyncTo
	}}
	if mode == "walfail" {
		opts.FS = faults.wrap(vfs.Default)
	}
	store, err := pebblestore.Open(dir, opts)
	if err != nil {
		return err
	}
	if mode == "hold" { // keep the dir locked until killed
		fmt.Println("ready")
		time.Sleep(time.Hour)
	}
	l, err := eventlog.Open(eventlog.Config{}, store)
	if err != nil {
		return err
	}
	var out sync.Mutex
	appendOne := func(km killmail.Killmail) error {
		res, err := l.Append([]killmail.Killmail{km}, &eventlog.Cursor{Name: "seq", Value: uint64(km.ID)})
		if err != nil {
			return err
		}
		out.Lock()
		defer out.Unlock()
		_, err = fmt.Printf("ack %d %d %d\n", km.ID, res[0].EventID, km.SystemID)
		return err
	}
	switch mode {
	case "kill": // four writers until the parent kills the process
		errs := make(chan error, 4)
		for g := range 4 {
			go func() {
				for _, km := range synthetic(src, int64(g+1)*1_000_000, 1_000_000) {
					if err := appendOne(km); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		return <-errs
	case "walfail":
		kms := synthetic(src, 1_000_000, 21)
		for _, km := range kms[:20] {
			if err := appendOne(km); err != nil {
				return err
			}
		}
		faults.armed.Store(true)
		fmt.Println("armed")
		return appendOne(kms[20]) // Pebble exits the process
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

type ack struct {
	killmailID int64
	eventID    uint64
	systemID   int64
}

// startHelper runs the child in dir and returns its stdout lines.
func startHelper(mode, dir string) (*exec.Cmd, *bufio.Scanner, *strings.Builder) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestPebbleStore$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, dirEnv+"="+dir)
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(stdout), stderr
}

func parseAck(line string) ack {
	var a ack
	_, err := fmt.Sscanf(line, "ack %d %d %d", &a.killmailID, &a.eventID, &a.systemID)
	Expect(err).NotTo(HaveOccurred(), "line %q", line)
	return a
}

// expectAcked reopens dir and checks that every acknowledged killmail is
// stored under its event id.
func expectAcked(dir string, acks []ack) {
	store, err := pebblestore.Open(dir, pebblestore.Options{})
	Expect(err).NotTo(HaveOccurred())
	l, err := eventlog.Open(eventlog.Config{}, store)
	Expect(err).NotTo(HaveOccurred())
	defer func() { Expect(l.Close()).To(Succeed()) }()
	var maxKM int64
	for _, a := range acks {
		b, err := l.Since(selection.Of([]int64{a.systemID}), a.eventID-1, 1)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.ReadBodies()).To(Succeed())
		Expect(b.Events).NotTo(BeEmpty(), "event %d", a.eventID)
		Expect(b.Events[0].ID).To(Equal(a.eventID))
		res, err := l.Append([]killmail.Killmail{{ID: a.killmailID, SystemID: a.systemID, JSON: []byte(`{}`)}}, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(res[0]).To(Equal(eventlog.AppendResult{EventID: a.eventID, Duplicate: true}))
		maxKM = max(maxKM, a.killmailID)
	}
	if len(acks) > 0 {
		seq, ok := l.Cursor("seq")
		Expect(ok).To(BeTrue())
		Expect(seq).To(BeNumerically(">=", maxKM)) // max-merged whatever the commit order
	}
}

var _ = Describe("crash recovery", func() {
	It("refuses a data dir that another process holds", func() {
		dir := GinkgoT().TempDir()
		cmd, lines, stderr := startHelper("hold", dir)
		Expect(lines.Scan()).To(BeTrue(), "child stderr: %s", stderr)
		Expect(lines.Text()).To(Equal("ready"))
		_, err := pebblestore.Open(dir, pebblestore.Options{})
		Expect(err).To(MatchError(pebblestore.ErrLocked))
		Expect(err.Error()).To(HavePrefix("open pebble " + dir + ": "))
		Expect(cmd.Process.Kill()).To(Succeed())
		_ = cmd.Wait()
		s, err := pebblestore.Open(dir, pebblestore.Options{}) // the lock died with the process
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Close()).To(Succeed())
	})

	It("keeps every acknowledged append when the process is killed mid-write", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		cmd, lines, stderr := startHelper("kill", dir)
		var acks []ack
		for len(acks) < 300 && lines.Scan() {
			acks = append(acks, parseAck(lines.Text()))
		}
		Expect(acks).To(HaveLen(300), "child stderr: %s", stderr)
		Expect(cmd.Process.Kill()).To(Succeed()) // SIGKILL while writers are committing
		for lines.Scan() {                       // acks printed before the kill landed
			acks = append(acks, parseAck(lines.Text()))
		}
		_ = cmd.Wait()
		expectAcked(dir, acks)
	}, SpecTimeout(2*time.Minute))

	It("exits on a failed WAL sync and recovers what was acknowledged", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		cmd, lines, stderr := startHelper("walfail", dir)
		var acks []ack
		armed := false
		for lines.Scan() {
			if lines.Text() == "armed" {
				armed = true
				continue
			}
			Expect(armed).To(BeFalse(), "an append was acknowledged after its sync failed")
			acks = append(acks, parseAck(lines.Text()))
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		Expect(errors.As(err, &exit)).To(BeTrue(), "child stderr: %s", stderr)
		Expect(exit.ExitCode()).To(Equal(1), "child stderr: %s", stderr)
		Expect(stderr.String()).To(ContainSubstring("fatal"))
		Expect(stderr.String()).To(ContainSubstring("injected error"))
		Expect(acks).To(HaveLen(20))
		expectAcked(dir, acks)
	}, SpecTimeout(2*time.Minute))
})
