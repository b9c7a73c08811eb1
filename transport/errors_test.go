package transport

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/edge/edgepb"
	"github.com/killfeed/killfeed/eventlog"
	"github.com/killfeed/killfeed/killmail"
)

// replySentinels are the sentinel errors a store reply can carry (from the
// packages whose errors reach a request's answer), by their Go names.
var replySentinels = map[string]error{
	"actors.ErrUnavailable":      actors.ErrUnavailable,
	"actors.ErrCrashed":          actors.ErrCrashed,
	"actors.ErrStopped":          actors.ErrStopped,
	"eventlog.ErrClosed":         eventlog.ErrClosed,
	"eventlog.ErrWrite":          eventlog.ErrWrite,
	"eventlog.ErrTooManyClients": eventlog.ErrTooManyClients,
	"eventlog.ErrNotOwner":       eventlog.ErrNotOwner,
	"killmail.ErrNotObject":      killmail.ErrNotObject,
	"killmail.ErrNoID":           killmail.ErrNoID,
	"killmail.ErrNoSystem":       killmail.ErrNoSystem,
	"killmail.ErrInvalidUTF8":    killmail.ErrInvalidUTF8,
	"killmail.ErrTooDeep":        killmail.ErrTooDeep,
	"killmail.ErrTooLarge":       killmail.ErrTooLarge,
	"killmail.ErrInvalidJSON":    killmail.ErrInvalidJSON,
}

// notReplies are sentinels that end a subscription and never answer a
// request (transport turns them into websocket close codes).
var notReplies = map[string]string{
	"actors.ErrSlowConsumer": "closes a subscription whose buffer overflowed",
	"actors.ErrRestarted":    "closes the subscriptions of a restarted PubSub",
}

// declaredSentinels lists the exported Err… variables declared in the
// non-test files of the packages in dirs, as "pkg.ErrName".
func declaredSentinels(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, dir := range dirs {
		fset := token.NewFileSet()
		files, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.VAR {
					continue
				}
				for _, s := range g.Specs {
					for _, id := range s.(*ast.ValueSpec).Names {
						if strings.HasPrefix(id.Name, "Err") && id.IsExported() {
							out = append(out, f.Name.Name+"."+id.Name)
						}
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestErrorTableCoversEverySentinel fails when a package adds a sentinel
// error that the error table does not answer: add a row (or, for an error
// that never answers a request, a line in notReplies).
func TestErrorTableCoversEverySentinel(t *testing.T) {
	declared := declaredSentinels(t, "actors", "eventlog", "killmail")
	if len(declared) < len(replySentinels) {
		t.Fatalf("found only %v: is the scan broken?", declared)
	}
	for _, name := range declared {
		_, reply := replySentinels[name]
		_, other := notReplies[name]
		if !reply && !other {
			t.Errorf("%s has no row in the error table (nor a reason in notReplies)", name)
		}
	}
	for name, err := range replySentinels {
		r := ruleOf(fmt.Errorf("op: %w", err))
		if r == nil || r.err != err {
			t.Errorf("%s: no row of its own in the error table", name)
		}
	}
}

// TestEverySentinelCrossesTheWireFaithfully: what a core answers for a
// sentinel, an edge answers too — same status, same text — and the error
// the edge sees matches the same sentinel (errors.Is), except the core
// going away, which an edge's clients see as the store unavailable.
func TestEverySentinelCrossesTheWireFaithfully(t *testing.T) {
	for name, sentinel := range replySentinels {
		err := fmt.Errorf("op: %w", sentinel)
		f := WireFailure(err)
		if f.GetCode() == edgepb.Code_CODE_INTERNAL || f.GetCode() == edgepb.Code_CODE_OK {
			t.Errorf("%s crosses as %v", name, f.GetCode())
			continue
		}
		back := FailureError(f)
		want := sentinel
		if r := ruleOf(err); r.edge != nil {
			want = r.edge
		}
		if !errors.Is(back, want) {
			t.Errorf("%s came back as %v, want %v", name, back, want)
		}
		status, text := statusOf(err)
		if status < 400 {
			t.Errorf("%s answers %d", name, status)
		}
		if want != sentinel {
			continue
		}
		if s, tx := statusOf(back); s != status || tx != text {
			t.Errorf("%s: the core answers %d %q, an edge %d %q", name, status, text, s, tx)
		}
	}
	if FailureError(WireFailure(nil)) != nil {
		t.Error("no failure came back as an error")
	}
	// An error of no rule is a 500 on both sides.
	back := FailureError(WireFailure(errors.New("something else")))
	if s, _ := statusOf(back); s != 500 || back.Error() != "something else" {
		t.Errorf("an unknown error came back as %d %v", s, back)
	}
}

// TestEveryWireCodeNamesARule: each failure code an edge may receive maps
// back to an error that is sent with the same code.
func TestEveryWireCodeNamesARule(t *testing.T) {
	for n, name := range edgepb.Code_name {
		code := edgepb.Code(n)
		switch code {
		case edgepb.Code_CODE_OK, edgepb.Code_CODE_VERSION, edgepb.Code_CODE_INTERNAL:
			continue
		}
		back := FailureError(&edgepb.Failure{Code: code, Message: "m"})
		if got := WireFailure(back).GetCode(); got != code && !errors.Is(back, actors.ErrUnavailable) {
			t.Errorf("%s comes back as %v, which is sent as %v", name, back, got)
		}
		if s, _ := statusOf(back); s == 500 {
			t.Errorf("%s answers 500 on an edge", name)
		}
	}
}
