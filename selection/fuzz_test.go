package selection_test

import (
	"errors"
	"testing"

	"github.com/killfeed/killfeed/selection"
)

// FuzzParseRedisQFilter: listen.php's filter= in RedisQ's syntax. It is
// refused with an error naming filter, or compiles to a predicate whose
// canonical form parses back to itself and that decides any killmail.
func FuzzParseRedisQFilter(f *testing.F) {
	for _, s := range []string{
		"alliance_id=99000001", "totalValue>=1000000000;solar_system_id=30000142", "labels=solo,npc=true",
		"a=1;b=2,c=3", "=", "a=", "=1", "a<=<=1", "a!=!=1", "!", "a!b=1", "killID>0", "zkb=1", "x=1e308",
		"hash!=abc;ship_type_id=670", "labels=loc:highsec", " a = 1 ", "a==1", "a=>1", "a<>1",
	} {
		f.Add(s)
	}
	km := sample(f)
	facts := selection.Extract(km)
	f.Fuzz(func(t *testing.T, filter string) {
		if len(filter) > 4096 {
			t.Skip()
		}
		p, err := selection.ParseRedisQFilter(filter)
		if err != nil {
			var pe *selection.ParamError
			if !errors.As(err, &pe) || (pe.Param != "filter" && pe.Param != "labels") {
				t.Fatalf("%q: error %v does not name filter", filter, err)
			}
			return
		}
		back, err := selection.Parse(p.String())
		if err != nil || back.String() != p.String() {
			t.Fatalf("%q: canonical form %q does not parse back: %v", filter, p.String(), err)
		}
		body := p.MatchBody(facts, km)
		if body && !p.Match(facts) {
			t.Fatalf("%q: the body matches but the facts refuse", filter)
		}
	})
}
