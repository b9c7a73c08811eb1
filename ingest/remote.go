package ingest

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/ingest/remotepb"
	"github.com/killfeed/killfeed/killmail"
	"github.com/killfeed/killfeed/metrics"
)

// Defaults of RemoteConfig.
const (
	DefaultRemoteName    = "ingest"
	DefaultRemoteTimeout = 5 * time.Second
)

// maxRemoteMessage bounds one gRPC message of the remote endpoint.
const maxRemoteMessage = 256 << 20

// RemoteConfig configures the Proto.Actor remote ingest endpoint. Listen
// is required; for the rest the zero value means the default.
type RemoteConfig struct {
	// Listen is the host:port the remote's gRPC server binds; port 0 picks
	// a free one.
	Listen string
	// Advertise is the host:port other nodes reach this one at; "" means
	// the bound address.
	Advertise string
	// Name is the name of the ingest actor; "" means DefaultRemoteName.
	Name string
	// Timeout bounds one insert; 0 means DefaultRemoteTimeout.
	Timeout time.Duration
	// Logger receives the endpoint's logs; nil discards them.
	Logger *slog.Logger
}

// Validate reports invalid fields by their flag names.
func (c RemoteConfig) Validate() error {
	if _, _, err := splitHostPort(c.Listen); err != nil {
		return configError("remote-listen", "%v", err)
	}
	if c.Advertise != "" {
		if _, _, err := splitHostPort(c.Advertise); err != nil {
			return configError("remote-advertise", "%v", err)
		}
	}
	if c.Timeout < 0 {
		return configError("remote-timeout", "must not be negative, got %s", c.Timeout)
	}
	return nil
}

func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port must be 0…65535", s)
	}
	return host, port, nil
}

// Remote is the in-cluster ingest endpoint: Proto.Actor remoting on the
// service's actor system and a named actor that turns
// remotepb.InsertKillmail into store inserts and answers
// remotepb.InsertKillmailResult.
type Remote struct {
	system *actor.ActorSystem
	remote *remote.Remote
	pid    *actor.PID
	log    *slog.Logger
}

// StartRemote starts remoting on svc's actor system and spawns the ingest
// actor. Stop it before stopping svc.
func StartRemote(svc *actors.Service, cfg RemoteConfig) (_ *Remote, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = DefaultRemoteName
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRemoteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	host, port, _ := splitHostPort(cfg.Listen)
	// remote.Start panics when it cannot listen: find out first.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("remote listen: %w", err)
	}
	if port == 0 {
		port = ln.Addr().(*net.TCPAddr).Port
	}
	_ = ln.Close()

	system := svc.System()
	props := actor.PropsFromProducer(func() actor.Actor {
		return &ingestActor{store: svc.Store(), timeout: cfg.Timeout, log: cfg.Logger}
	})
	pid, err := system.Root.SpawnNamed(props, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", cfg.Name, err)
	}
	// A batch of killmails (an edge's catch-up, a forwarder's burst) can
	// pass gRPC's 4 MiB default.
	opts := []remote.ConfigOption{remote.WithServerOptions(grpc.MaxRecvMsgSize(maxRemoteMessage))}
	if cfg.Advertise != "" {
		opts = append(opts, remote.WithAdvertisedHost(cfg.Advertise))
	}
	r := remote.NewRemote(system, remote.Configure(host, port, opts...))
	defer func() {
		if p := recover(); p != nil {
			_ = system.Root.StopFuture(pid).Wait()
			err = fmt.Errorf("remote start: %v", p)
		}
	}()
	r.Start()
	cfg.Logger.Info("remote ingest listening", "address", system.Address(), "actor", cfg.Name)
	return &Remote{system: system, remote: r, pid: pid, log: cfg.Logger}, nil
}

// Address is the host:port ingestors reach the endpoint at.
func (r *Remote) Address() string { return r.system.Address() }

// PID is the ingest actor's address as ingestors name it:
// actor.NewPID(Address(), name).
func (r *Remote) PID() *actor.PID { return actor.NewPID(r.Address(), r.pid.Id) }

// Stop stops the ingest actor and the remote server and waits for them.
// Answers still in flight are dropped; their senders time out.
func (r *Remote) Stop() {
	root := r.system.Root
	_ = root.StopFuture(r.pid).Wait()
	// remote.Shutdown(true) sets the endpoint manager's connection map to
	// nil while endpoint writers may still read it (a data race, and a nil
	// dereference when an endpoint terminates during shutdown). Stop the
	// remote's actors — the endpoint supervisor closes the outgoing
	// connections — and then the gRPC server instead.
	for _, name := range []string{"EndpointSupervisor", "activator"} {
		_ = root.StopFuture(r.system.NewLocalPID(name)).Wait()
	}
	r.remote.Shutdown(false)
}

// ingestActor turns remote InsertKillmail messages into store inserts
// without blocking its Receive on the store's reply.
type ingestActor struct {
	store   *actor.PID
	timeout time.Duration
	log     *slog.Logger
}

func (a *ingestActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
	case *remotepb.InsertKillmail:
		a.insert(ctx, msg)
	default:
		a.log.Warn("ingest actor: unknown message", "type", fmt.Sprintf("%T", msg))
	}
}

func (a *ingestActor) insert(ctx actor.Context, msg *remotepb.InsertKillmail) {
	km, err := killmail.Parse(msg.GetKillmailJson())
	if err == nil && msg.GetSystemId() != 0 && msg.GetSystemId() != km.SystemID {
		err = fmt.Errorf("system_id %d does not match the killmail's solar_system_id %d", msg.GetSystemId(), km.SystemID)
	}
	if err != nil {
		ctx.Respond(&remotepb.InsertKillmailResult{Error: err.Error()})
		return
	}
	f := ctx.RequestFuture(a.store, &actors.InsertKillmail{Killmails: []killmail.Killmail{km}, Source: metrics.SourceRemote}, a.timeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		ctx.Respond(insertResult(res, err))
	})
}

func insertResult(res any, err error) *remotepb.InsertKillmailResult {
	r, err := actors.ReplyAs[*actors.InsertKillmailResult](res, err)
	if err == nil {
		err = r.Err
	}
	if err == nil && len(r.Results) != 1 {
		err = fmt.Errorf("store answered %d results for 1 killmail", len(r.Results))
	}
	if err != nil {
		return &remotepb.InsertKillmailResult{Error: err.Error()}
	}
	return &remotepb.InsertKillmailResult{EventId: r.Results[0].EventID, Duplicate: r.Results[0].Duplicate}
}
