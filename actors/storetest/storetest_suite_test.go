package storetest_test

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/actors/storetest"
	"github.com/killfeed/killfeed/edge"
	"github.com/killfeed/killfeed/eventlog"
)

func TestStoreContract(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "store contract")
}

// startCore starts a single node's actors over a memory log with cfg.
func startCore(cfg eventlog.Config) *actors.Service {
	GinkgoHelper()
	log, err := eventlog.Open(cfg, nil)
	Expect(err).NotTo(HaveOccurred())
	svc, err := actors.Start(log, false, actors.Config{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		svc.Stop()
		_ = log.Close()
	})
	return svc
}

var _ = storetest.Specs("the store actor of a single node", func(cfg eventlog.Config) storetest.Target {
	svc := startCore(cfg)
	return storetest.Target{Svc: svc, Core: svc}
})

var _ = storetest.Specs("an edge's relay, with its core", func(cfg eventlog.Config) storetest.Target {
	core := startCore(cfg)
	const coreAddr, edgeAddr = "core.test:7000", "edge.test:7000"
	node, err := edge.NewNode(edge.NodeConfig{Core: coreAddr, PingInterval: 50 * time.Millisecond})
	Expect(err).NotTo(HaveOccurred())
	svc, err := actors.StartEdge(actors.Config{}, node.Upstream())
	Expect(err).NotTo(HaveOccurred())
	link(core.System(), coreAddr, svc.System(), edgeAddr)
	endpoint, err := edge.StartCore(core, edge.CoreConfig{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		svc.Stop()
		endpoint.Stop()
	})
	node.Connect(svc)
	Eventually(node.Ready).WithTimeout(10 * time.Second).Should(BeTrue())
	return storetest.Target{Svc: svc, Core: core}
})

// link joins two actor systems of one process as Proto.Actor remote joins
// two nodes, without gRPC (remote.Start resets grpc's global logger, which
// a second remote in one process races with): a message to the other
// system's address crosses as a copy, protobuf messages by proto.Clone,
// which keeps what the wire would carry and nothing else.
func link(a *actor.ActorSystem, addrA string, b *actor.ActorSystem, addrB string) {
	a.ProcessRegistry.Address, b.ProcessRegistry.Address = addrA, addrB
	resolve := func(to *actor.ActorSystem, addr string) actor.AddressResolver {
		return func(pid *actor.PID) (actor.Process, bool) {
			if pid.Address != addr {
				return nil, false
			}
			return crossing{to: to}, true
		}
	}
	a.ProcessRegistry.RegisterAddressResolver(resolve(b, addrB))
	b.ProcessRegistry.RegisterAddressResolver(resolve(a, addrA))
}

// crossing delivers to a process of another actor system.
type crossing struct{ to *actor.ActorSystem }

func (c crossing) target(pid *actor.PID) (*actor.PID, actor.Process) {
	t := clonePID(pid)
	p, _ := c.to.ProcessRegistry.Get(t)
	return t, p
}

func (c crossing) SendUserMessage(pid *actor.PID, msg any) {
	t, p := c.target(pid)
	p.SendUserMessage(t, cross(msg))
}

func (c crossing) SendSystemMessage(pid *actor.PID, msg any) {
	t, p := c.target(pid)
	p.SendSystemMessage(t, cross(msg))
}

func (c crossing) Stop(pid *actor.PID) {
	t, p := c.target(pid)
	p.Stop(t)
}

// clonePID copies a PID without the process it caches for its system.
func clonePID(pid *actor.PID) *actor.PID {
	if pid == nil {
		return nil
	}
	return &actor.PID{Address: pid.Address, Id: pid.Id, RequestId: pid.RequestId}
}

func cross(msg any) any {
	switch m := msg.(type) {
	case *actor.MessageEnvelope:
		return &actor.MessageEnvelope{Header: m.Header, Message: cross(m.Message), Sender: clonePID(m.Sender)}
	case *actor.Watch:
		return &actor.Watch{Watcher: clonePID(m.Watcher)}
	case *actor.Unwatch:
		return &actor.Unwatch{Watcher: clonePID(m.Watcher)}
	case *actor.Terminated:
		return &actor.Terminated{Who: clonePID(m.Who), Why: m.Why}
	case proto.Message:
		return proto.Clone(m)
	}
	return msg
}
