package actors

// worker is a Proto.Actor dispatcher that runs an actor's mailbox on one
// long-lived goroutine instead of a new goroutine at each wake-up. The
// store is woken by every request; a fresh goroutine would grow its stack
// through the read each time, a cost the worker, whose stack stays grown,
// pays once. The mailbox already runs one batch at a time; a wake-up that
// finds the worker busy finishing one (the batch ended, the worker has not
// yet waited again) runs on a goroutine of its own, as by default.
type worker struct {
	fns        chan func()
	done       chan struct{}
	throughput int
}

// newWorker starts a worker processing throughput messages per batch;
// stop ends its goroutine.
func newWorker(throughput int) *worker {
	w := &worker{fns: make(chan func()), done: make(chan struct{}), throughput: throughput}
	go w.run()
	return w
}

func (w *worker) run() {
	for {
		select {
		case fn := <-w.fns:
			fn()
		case <-w.done:
			return
		}
	}
}

// Schedule runs fn on the worker when it waits, else on a new goroutine.
func (w *worker) Schedule(fn func()) {
	select {
	case w.fns <- fn:
	default:
		go fn()
	}
}

// Throughput is how many messages a batch processes before yielding.
func (w *worker) Throughput() int { return w.throughput }

// stop ends the worker's goroutine; later wake-ups get goroutines of
// their own.
func (w *worker) stop() { close(w.done) }
