package selection

import (
	"cmp"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// IsRedisQFilter says whether a listen.php filter= value is in RedisQ's
// key<op>value syntax rather than killfeed's system:/constellation:/region:
// terms.
func IsRedisQFilter(f string) bool { return strings.ContainsAny(f, "=<>") }

// ParseRedisQFilter compiles RedisQ's filter= syntax (zKillboard/RedisQ
// util/filters.js): key<op>value rules, op one of = != < <= > >=, joined
// by ';' (all must hold) or ',' (one must), never both. A rule holds when
// some value of key, looked up anywhere in the package (the ESI killmail
// and zkb, arrays included; killID is the killmail_id), compares true:
// numbers numerically, strings exactly (or by byte order for < and >),
// booleans against true and false, an array element by element.
func ParseRedisQFilter(f string) (Predicate, error) {
	return Terms{Filter: f}.Compile()
}

// op is a comparison of a RedisQ rule.
type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

// cutOp finds the first operator in s, as util/filters.js's regular
// expression does.
func cutOp(s string) (key string, o op, val string, ok bool) {
	i := strings.IndexAny(s, "=<>!")
	for i >= 0 && s[i] == '!' && (i+1 >= len(s) || s[i+1] != '=') {
		j := strings.IndexAny(s[i+1:], "=<>!")
		if j < 0 {
			return "", 0, "", false
		}
		i += 1 + j
	}
	if i < 0 {
		return "", 0, "", false
	}
	two := i+1 < len(s) && s[i+1] == '='
	switch {
	case s[i] == '!':
		o = opNe
	case s[i] == '<' && two:
		o = opLe
	case s[i] == '>' && two:
		o = opGe
	case s[i] == '<':
		o = opLt
	case s[i] == '>':
		o = opGt
	default:
		o = opEq
	}
	n := 1
	if two || o == opNe {
		n = 2
	}
	return strings.TrimSpace(s[:i]), o, strings.TrimSpace(s[i+n:]), true
}

// rule is one key<op>value of a RedisQ filter.
type rule struct {
	key   string
	op    op
	str   string
	num   float64
	isNum bool
}

// anyOf and allOf combine rules.
type anyOf []term
type allOf []term

func (t anyOf) match(f *Facts, body *gjson.Result) bool {
	for _, x := range t {
		if x.match(f, body) {
			return true
		}
	}
	return false
}

func (t allOf) match(f *Facts, body *gjson.Result) bool {
	for _, x := range t {
		if !x.match(f, body) {
			return false
		}
	}
	return true
}

// parseRedisQ compiles a RedisQ filter into one term; body says whether
// some rule reads the killmail JSON.
func parseRedisQ(f string) (term, bool, error) {
	and, or := strings.Contains(f, ";"), strings.Contains(f, ",")
	if and && or {
		return nil, false, bad("filter", "mixes ';' (and) with ',' (or); use one of them")
	}
	sep := ","
	if and {
		sep = ";"
	}
	parts := strings.Split(f, sep)
	if len(parts) > MaxLabels {
		return nil, false, bad("filter", "more than "+strconv.Itoa(MaxLabels)+" rules")
	}
	terms := make([]term, 0, len(parts))
	body := false
	for _, p := range parts {
		key, o, val, ok := cutOp(p)
		if !ok {
			if strings.Contains(p, ":") {
				return nil, false, bad("filter", strconv.Quote(strings.TrimSpace(p))+
					" is one of killfeed's system:/constellation:/region: terms, which cannot be mixed with RedisQ's key<op>value rules")
			}
			return nil, false, bad("filter", strconv.Quote(strings.TrimSpace(p))+" is not key<op>value (op: = != < <= > >=)")
		}
		if key == "" {
			return nil, false, bad("filter", strconv.Quote(strings.TrimSpace(p))+" has no key")
		}
		if val == "" {
			return nil, false, bad("filter", strconv.Quote(strings.TrimSpace(p))+" has no value")
		}
		r := rule{key: key, op: o, str: val}
		if n, err := strconv.ParseFloat(val, 64); err == nil {
			r.num, r.isNum = n, true
		}
		t, fact := r.compile()
		body = body || !fact
		terms = append(terms, t)
	}
	if len(terms) == 1 {
		return terms[0], body, nil
	}
	if and {
		return allOf(terms), body, nil
	}
	return anyOf(terms), body, nil
}

var entityKeys = map[string]Kind{
	"character_id":   Character,
	"corporation_id": Corporation,
	"alliance_id":    Alliance,
	"faction_id":     Faction,
	"ship_type_id":   Ship,
}

// compile turns a rule into a term over the facts when its key is one the
// facts hold (fact true), else into one that reads the body.
func (r rule) compile() (t term, fact bool) {
	if k, ok := entityKeys[r.key]; ok && r.op == opEq && r.isNum {
		id := int64(r.num)
		if float64(id) == r.num && id > 0 {
			return entityTerm{kind: k, side: SideAny, ids: []int64{id}}, true
		}
	}
	if r.isNum {
		switch r.key {
		case "solar_system_id":
			return factNum{r, func(f *Facts) (float64, bool) { return float64(f.System), f.System != 0 }}, true
		case "totalValue":
			return factNum{r, func(f *Facts) (float64, bool) { return f.Value, f.HasValue }}, true
		case "locationID":
			return factNum{r, func(f *Facts) (float64, bool) { return float64(f.Location), f.Location != 0 }}, true
		}
	}
	if r.key == "labels" && !r.isNum && (r.op == opEq || r.op == opNe) {
		return factLabels(r), true
	}
	return bodyRule(r), false
}

// factNum compares one numeric fact.
type factNum struct {
	r   rule
	get func(*Facts) (float64, bool)
}

func (t factNum) match(f *Facts, _ *gjson.Result) bool {
	v, ok := t.get(f)
	return ok && compare(t.r.op, v, t.r.num)
}

// factLabels compares each label.
type factLabels rule

func (t factLabels) match(f *Facts, _ *gjson.Result) bool {
	for _, l := range f.Labels {
		if compare(t.op, l, t.str) {
			return true
		}
	}
	return false
}

// bodyRule looks the key up in the killmail JSON.
type bodyRule rule

func (t bodyRule) match(_ *Facts, body *gjson.Result) bool {
	if body == nil {
		return true // decided by MatchBody
	}
	r := rule(t)
	key := r.key
	if key == "killID" {
		key = "killmail_id"
	}
	found := false
	walk(*body, key, func(v gjson.Result) bool {
		found = r.test(v)
		return !found
	})
	return found
}

// walk calls fn with every value of key in v, at any depth, until fn
// returns false.
func walk(v gjson.Result, key string, fn func(gjson.Result) bool) bool {
	more := true
	switch {
	case v.IsObject():
		v.ForEach(func(k, x gjson.Result) bool {
			if k.Str == key && !fn(x) {
				more = false
				return false
			}
			more = walk(x, key, fn)
			return more
		})
	case v.IsArray():
		v.ForEach(func(_, x gjson.Result) bool {
			more = walk(x, key, fn)
			return more
		})
	}
	return more
}

// test compares one value found for the rule's key.
func (r rule) test(v gjson.Result) bool {
	switch v.Type {
	case gjson.Number:
		if r.isNum {
			return compare(r.op, v.Num, r.num)
		}
		return r.op == opNe
	case gjson.String:
		if r.isNum {
			if n, err := strconv.ParseFloat(strings.TrimSpace(v.Str), 64); err == nil {
				return compare(r.op, n, r.num)
			}
			return r.op == opNe
		}
		return compare(r.op, v.Str, r.str)
	case gjson.True, gjson.False:
		b := v.Type == gjson.True
		switch {
		case r.isNum:
			n := 0.0
			if b {
				n = 1
			}
			return compare(r.op, n, r.num)
		case r.str == "true" || r.str == "false":
			eq := b == (r.str == "true")
			return (r.op == opEq && eq) || (r.op == opNe && !eq)
		}
		return r.op == opNe
	}
	if v.IsArray() {
		found := false
		v.ForEach(func(_, x gjson.Result) bool {
			found = !x.IsArray() && !x.IsObject() && r.test(x)
			return !found
		})
		return found
	}
	return false // objects and null
}

// compare applies o to a and b: numbers numerically, strings bytewise.
func compare[T cmp.Ordered](o op, a, b T) bool {
	switch o {
	case opEq:
		return a == b
	case opNe:
		return a != b
	case opLt:
		return a < b
	case opLe:
		return a <= b
	case opGt:
		return a > b
	}
	return a >= b
}
