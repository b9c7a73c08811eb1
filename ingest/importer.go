package ingest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/metrics"
)

// Defaults of ImportConfig.
const (
	// DefaultBatchBytes keeps a batch well under the server's 32 MiB body
	// limit while amortising the per-request cost.
	DefaultBatchBytes = 8 << 20
	DefaultMaxRejects = 1000
	chunkLines        = 256
)

// Sink is where an import puts killmails, one batch at a time. A batch
// refused as a whole for its content is a *RejectError; the importer then
// splits it to find the culprits. Any other error stops the import.
type Sink interface {
	Insert(ctx context.Context, kms []killmail.Killmail) ([]eventlog.AppendResult, error)
}

// RejectError is a batch the sink refused for its content.
type RejectError struct{ Reason string }

func (e *RejectError) Error() string { return "rejected: " + e.Reason }

// StoreSink imports into a Store (a running service in this process).
type StoreSink struct{ Store Store }

// Insert implements Sink.
func (s StoreSink) Insert(ctx context.Context, kms []killmail.Killmail) ([]eventlog.AppendResult, error) {
	return s.Store.Insert(actors.WithSource(ctx, metrics.SourceImport), kms, nil)
}

// LogSink imports straight into an event log (offline, into a data dir).
type LogSink struct{ Log *eventlog.Log }

// Insert implements Sink.
func (s LogSink) Insert(_ context.Context, kms []killmail.Killmail) ([]eventlog.AppendResult, error) {
	return s.Log.Append(kms, nil)
}

// ImportConfig tunes an import. The zero value means the defaults.
type ImportConfig struct {
	// BatchBytes bounds the killmail bytes of one batch handed to the sink;
	// 0 means DefaultBatchBytes.
	BatchBytes int
	// MaxRejects is how many rejected lines are kept in the result (all are
	// counted); 0 means DefaultMaxRejects.
	MaxRejects int
	// Workers is how many goroutines parse lines; 0 means GOMAXPROCS.
	Workers int
	// Parallel is how many batches are handed to the sink at once; 0
	// means 1, which stores killmails in file order. With more, batches
	// (not the killmails within one) may be stored out of order.
	Parallel int
	// Progress, when set, is called with the running counts at most every
	// ProgressEvery, from the importing goroutine.
	Progress      func(ImportStats)
	ProgressEvery time.Duration
}

// ImportStats counts lines by outcome. Blank lines are not counted.
type ImportStats struct {
	Read, Inserted, Duplicates, Rejected int64
}

// Rejected is a line that was not imported.
type Rejected struct {
	File   string
	Line   int
	Reason string
}

func (r Rejected) String() string { return fmt.Sprintf("%s:%d: %s", r.File, r.Line, r.Reason) }

// ImportResult is the outcome of an import.
type ImportResult struct {
	ImportStats
	// Rejects are the first MaxRejects rejected lines, in file order.
	Rejects []Rejected
	Elapsed time.Duration
}

// chunk is a run of lines of one file, parsed by a worker.
type chunk struct {
	file  string
	nos   []int
	lines [][]byte
	long  []bool // line longer than the reader keeps

	kms     []killmail.Killmail
	kmLines []int
	rejects []Rejected
	done    chan struct{}
}

func (c *chunk) parse() {
	for i, line := range c.lines {
		if c.long[i] {
			c.rejects = append(c.rejects, Rejected{c.file, c.nos[i], killmail.ErrTooLarge.Error()})
			continue
		}
		km, err := killmail.Parse(line)
		if err != nil {
			c.rejects = append(c.rejects, Rejected{c.file, c.nos[i], err.Error()})
			continue
		}
		c.kms = append(c.kms, km)
		c.kmLines = append(c.kmLines, c.nos[i])
	}
	c.lines = nil
	close(c.done)
}

// Import reads JSON Lines files (plain or gzip, told apart by content) of
// ESI killmails, R2Z2 objects or RedisQ packages and stores them into sink
// in file order. Lines that are not killmails are rejected and reported;
// the rest are imported. The error is for what stops the import (a file
// that cannot be read, a sink failure, ctx); the result counts what was
// done until then.
func Import(ctx context.Context, sink Sink, files []string, cfg ImportConfig) (ImportResult, error) {
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	if cfg.MaxRejects <= 0 {
		cfg.MaxRejects = DefaultMaxRejects
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 200 * time.Millisecond
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	work := make(chan *chunk, cfg.Workers*2)
	order := make(chan *chunk, cfg.Workers*4)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for c := range work {
				c.parse()
			}
		})
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		readErr <- readFiles(ctx, files, func(c *chunk) bool {
			select {
			case order <- c:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- c:
				return true
			case <-ctx.Done():
				close(c.done) // never parsed; nobody waits for it
				return false
			}
		})
	}()

	imp := &importer{sink: sink, cfg: cfg, lastProgress: start, files: files,
		sendq: make(chan sendBatch, cfg.Parallel), sent: make(chan error, cfg.Parallel)}
	for range cfg.Parallel {
		go imp.sender(ctx, cancel)
	}
	var err error
	for c := range order {
		<-c.done
		if err != nil || ctx.Err() != nil {
			continue // drain
		}
		imp.mu.Lock()
		imp.res.Read += int64(len(c.nos))
		for _, r := range c.rejects {
			imp.reject(r)
		}
		imp.mu.Unlock()
		for i, km := range c.kms {
			if err = imp.add(ctx, c.file, c.kmLines[i], km); err != nil {
				break
			}
		}
		imp.progress()
	}
	if err == nil {
		err = imp.flush(ctx)
	}
	close(imp.sendq)
	for range cfg.Parallel {
		if serr := <-imp.sent; serr != nil && (err == nil || errors.Is(err, context.Canceled)) {
			err = serr
		}
	}
	wg.Wait()
	if rerr := <-readErr; err == nil {
		err = rerr
	}
	if err == nil {
		err = ctx.Err()
	}
	imp.res.Elapsed = time.Since(start)
	fileOrder := make(map[string]int, len(files))
	for i, f := range files {
		if _, ok := fileOrder[f]; !ok {
			fileOrder[f] = i
		}
	}
	slices.SortStableFunc(imp.res.Rejects, func(a, b Rejected) int {
		return cmp.Or(cmp.Compare(fileOrder[a.File], fileOrder[b.File]), cmp.Compare(a.Line, b.Line))
	})
	if cfg.Progress != nil {
		cfg.Progress(imp.res.ImportStats)
	}
	return imp.res, err
}

// importer batches parsed killmails; sender goroutines (one unless
// ImportConfig.Parallel says more) hand the batches to the sink while the
// next ones are parsed.
type importer struct {
	sink  Sink
	cfg   ImportConfig
	files []string

	// batch being filled, owned by the importing goroutine
	batch []killmail.Killmail
	where []Rejected // file and line of each batch element
	bytes int

	sendq chan sendBatch
	sent  chan error // each sender's final error

	mu           sync.Mutex // guards res
	res          ImportResult
	lastProgress time.Time
}

type sendBatch struct {
	kms   []killmail.Killmail
	where []Rejected
}

// reject records a rejected line; called with mu held.
func (imp *importer) reject(r Rejected) {
	imp.res.Rejected++
	if len(imp.res.Rejects) < imp.cfg.MaxRejects {
		imp.res.Rejects = append(imp.res.Rejects, r)
	}
}

func (imp *importer) progress() {
	if imp.cfg.Progress == nil || time.Since(imp.lastProgress) < imp.cfg.ProgressEvery {
		return
	}
	imp.lastProgress = time.Now()
	imp.mu.Lock()
	st := imp.res.ImportStats
	imp.mu.Unlock()
	imp.cfg.Progress(st)
}

func (imp *importer) add(ctx context.Context, file string, line int, km killmail.Killmail) error {
	if imp.bytes+len(km.JSON)+1 > imp.cfg.BatchBytes && len(imp.batch) > 0 {
		if err := imp.flush(ctx); err != nil {
			return err
		}
	}
	imp.batch = append(imp.batch, km)
	imp.where = append(imp.where, Rejected{File: file, Line: line})
	imp.bytes += len(km.JSON) + 1
	return nil
}

// flush queues the batch for the sender.
func (imp *importer) flush(ctx context.Context) error {
	if len(imp.batch) == 0 {
		return nil
	}
	select {
	case imp.sendq <- sendBatch{imp.batch, imp.where}:
	case <-ctx.Done():
		return ctx.Err()
	}
	imp.batch, imp.where, imp.bytes = nil, nil, 0
	return nil
}

// sender stores queued batches; on the first error it cancels the import
// and drains the queue.
func (imp *importer) sender(ctx context.Context, cancel context.CancelFunc) {
	var err error
	for b := range imp.sendq {
		if err == nil {
			if err = imp.insert(ctx, b.kms, b.where); err != nil {
				cancel()
			}
		}
	}
	imp.sent <- err
}

// insert stores kms; a batch rejected as a whole is split in halves until
// the rejected killmails are found and reported alone.
func (imp *importer) insert(ctx context.Context, kms []killmail.Killmail, where []Rejected) error {
	res, err := imp.sink.Insert(ctx, kms)
	var rej *RejectError
	switch {
	case errors.As(err, &rej) && len(kms) == 1:
		imp.mu.Lock()
		imp.reject(Rejected{where[0].File, where[0].Line, rej.Reason})
		imp.mu.Unlock()
		return nil
	case errors.As(err, &rej):
		h := len(kms) / 2
		if err := imp.insert(ctx, kms[:h], where[:h]); err != nil {
			return err
		}
		return imp.insert(ctx, kms[h:], where[h:])
	case err != nil:
		return err
	case len(res) != len(kms):
		return fmt.Errorf("insert %d killmails: got %d results", len(kms), len(res))
	}
	imp.mu.Lock()
	defer imp.mu.Unlock()
	for _, r := range res {
		if r.Duplicate {
			imp.res.Duplicates++
		} else {
			imp.res.Inserted++
		}
	}
	return nil
}

// readFiles reads every file's lines into chunks and hands them to emit in
// order; emit reports false to stop.
func readFiles(ctx context.Context, files []string, emit func(*chunk) bool) error {
	for _, name := range files {
		if err := readFile(ctx, name, emit); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// Stdin is the file name that reads standard input.
const Stdin = "-"

func readFile(ctx context.Context, name string, emit func(*chunk) bool) error {
	var f io.Reader = os.Stdin
	if name != Stdin {
		file, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer file.Close()
		f = file
	}
	r, err := openJSONL(f)
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	doc, array := jsonDocument(r)
	c := newChunk(name)
	err = readLines(r, doc, array, func(no int, line []byte, long bool) bool {
		c.nos = append(c.nos, no)
		c.lines = append(c.lines, line)
		c.long = append(c.long, long)
		if len(c.nos) < chunkLines {
			return true
		}
		ok := emit(c)
		c = newChunk(name)
		return ok
	})
	// The lines read whole before an error (a gzip file cut short) are
	// imported; the error then stops the import.
	if len(c.nos) > 0 && ctx.Err() == nil {
		emit(c)
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	return nil
}

func newChunk(file string) *chunk {
	return &chunk{file: file, done: make(chan struct{}),
		nos: make([]int, 0, chunkLines), lines: make([][]byte, 0, chunkLines), long: make([]bool, 0, chunkLines)}
}

// openJSONL returns r decompressed when it starts with the gzip magic,
// without the UTF-8 byte order mark some editors put first.
func openJSONL(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, 256<<10)
	}
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	return br, nil
}

// jsonDocument reports whether br holds a JSON array (array), or
// pretty-printed JSON (its first line is a lone "{"), rather than JSON
// Lines.
func jsonDocument(br *bufio.Reader) (doc, array bool) {
	head, _ := br.Peek(4096)
	head = bytes.TrimLeft(head, " \t\r\n")
	if len(head) == 0 {
		return false, false
	}
	if head[0] == '[' {
		return true, true
	}
	first, _, _ := bytes.Cut(head, []byte("\n"))
	return string(bytes.TrimSpace(first)) == "{", false
}

// readValues is readLines for a JSON array of killmails, or killmail
// objects one after the other however they are laid out: fn gets each
// value (an array's elements) numbered from 1 in place of a line number.
func readValues(r io.Reader, array bool, fn func(no int, value []byte, long bool) bool) error {
	dec := json.NewDecoder(r)
	if array {
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("JSON array: %w", err)
		}
	}
	for no := 1; ; no++ {
		if array && !dec.More() {
			if _, err := dec.Token(); err != nil { // the closing ]
				return fmt.Errorf("JSON array: %w", err)
			}
			return nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			if !array && errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("JSON value %d: %w", no, err)
		}
		if len(v) > killmail.MaxSize+64<<10 {
			if !fn(no, nil, true) {
				return nil
			}
			continue
		}
		if !fn(no, v, false) {
			return nil
		}
	}
}

// readLines calls fn with every non-blank line (a copy, without the line
// end) and its 1-based number. A line longer than killmail.MaxSize plus
// some slack is passed empty with long set.
//
// When doc is set, r holds a JSON document instead (see readValues).
func readLines(r io.Reader, doc, array bool, fn func(no int, line []byte, long bool) bool) error {
	if doc {
		return readValues(r, array, fn)
	}
	const keep = killmail.MaxSize + 64<<10
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 256<<10)
	}
	var buf []byte
	no := 0
	long := false
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			if !long {
				buf = append(buf, frag...)
				if len(buf) > keep {
					long, buf = true, buf[:0]
				}
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil && !errors.Is(err, io.EOF):
			return err
		}
		if len(frag) > 0 || len(buf) > 0 || long {
			no++
			line := bytes.TrimSpace(buf)
			if len(line) > 0 || long {
				if !fn(no, bytes.Clone(line), long) {
					return nil
				}
			}
		}
		buf, long = buf[:0], false
		if err != nil { // io.EOF
			return nil
		}
	}
}
