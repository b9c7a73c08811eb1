package killmail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"
)

// MaxSize is the largest stored killmail in bytes (compact JSON). The largest
// real killmail seen (982 attackers) is about 110 KB.
const MaxSize = 1 << 20

// Errors returned by Parse. Callers map them to 4xx answers.
var (
	ErrNotObject   = errors.New("killmail must be a JSON object")
	ErrNoID        = errors.New("killmail_id missing or not a positive integer")
	ErrNoSystem    = errors.New("solar_system_id missing or not a positive integer")
	ErrTooLarge    = fmt.Errorf("killmail larger than %d bytes", MaxSize)
	ErrInvalidJSON = errors.New("body is not valid JSON")
)

// Killmail is a killmail in stored form.
type Killmail struct {
	// ID is the killmail_id (the same in ESI and zKillboard).
	ID int64
	// SystemID is the solar_system_id the killmail happened in.
	SystemID int64
	// JSON is the ESI object as compact JSON, with "zkb" added when the
	// input carried a zkb block outside the ESI object.
	JSON []byte
}

// Parse turns one JSON object — an ESI killmail, an R2Z2 file object or a
// RedisQ package that carries the killmail — into its stored form. An
// object with a top-level solar_system_id is an ESI killmail; one without
// is unwrapped when its "esi" (R2Z2) or else "killmail" (RedisQ) is an
// object. The stored form of a killmail parses back to itself.
//
// The input is read by encoding/json once (json.Compact, which also
// validates it); fields are then located in the compact bytes with gjson,
// without decoding.
func Parse(raw []byte) (Killmail, error) {
	c, err := compact(raw)
	if err != nil {
		return Killmail{}, err
	}
	return parseCompact(c)
}

func compact(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	if buf.Len() == 0 {
		return nil, ErrInvalidJSON
	}
	return buf.Bytes(), nil
}

// parseCompact parses one compact, valid JSON value.
func parseCompact(c []byte) (Killmail, error) {
	if c[0] != '{' {
		return Killmail{}, ErrNotObject
	}
	f := scan(c)
	switch {
	case f.systemID.Exists():
		// An ESI killmail, even when it carries an "esi" or "killmail"
		// object of its own: it is stored as it is, so that the stored
		// form parses back to the same killmail.
	case f.esi.IsObject(): // R2Z2 file: the killmail is "esi"
		esi := raw(c, f.esi)
		return build(esi, scan(esi), raw(c, f.zkb), ".esi")
	case f.killmail.IsObject(): // RedisQ package
		km := raw(c, f.killmail)
		return build(km, scan(km), raw(c, f.zkb), ".killmail")
	}
	return build(c, f, nil, "")
}

// fields are the top-level fields of an object that Parse looks at.
type fields struct {
	killmailID, systemID, esi, killmail, zkb gjson.Result
}

// scan reads the top-level keys of a compact object in one pass, skipping
// the values it does not need.
func scan(obj []byte) fields {
	var f fields
	gjson.ParseBytes(obj).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "killmail_id":
			f.killmailID = v
		case "solar_system_id":
			f.systemID = v
		case "esi":
			f.esi = v
		case "killmail":
			f.killmail = v
		case "zkb":
			f.zkb = v
		}
		return true
	})
	return f
}

// raw is the bytes of a gjson result inside c.
func raw(c []byte, r gjson.Result) []byte {
	if !r.Exists() {
		return nil
	}
	if r.Index > 0 {
		return c[r.Index : r.Index+len(r.Raw)]
	}
	return []byte(r.Raw)
}

// FromESI builds the stored form of an ESI killmail and an optional zkb block
// (nil or JSON null for none), as an ESI fetch for a RedisQ package gives them.
func FromESI(esi, zkb []byte) (Killmail, error) {
	c, err := compact(esi)
	if err != nil {
		return Killmail{}, err
	}
	if c[0] != '{' {
		return Killmail{}, ErrNotObject
	}
	if len(bytes.TrimSpace(zkb)) > 0 {
		if zkb, err = compact(zkb); err != nil {
			return Killmail{}, fmt.Errorf("zkb: %w", err)
		}
	}
	return fromObject(c, zkb)
}

// fromObject builds the stored form from a compact ESI object and a compact
// zkb value, added when it is an object and the ESI object has none.
func fromObject(esi, zkb []byte) (Killmail, error) {
	return build(esi, scan(esi), zkb, "")
}

// build makes the stored form of esi, whose fields are f and which sits at
// path at in the input, after checking what it stores (see Check).
func build(esi []byte, f fields, zkb []byte, at string) (Killmail, error) {
	id, ok := positive(f.killmailID)
	if !ok {
		return Killmail{}, ErrNoID
	}
	sys, ok := positive(f.systemID)
	if !ok {
		return Killmail{}, ErrNoSystem
	}
	splice := len(zkb) > 0 && zkb[0] == '{' && !f.zkb.Exists()
	size := len(esi)
	if splice {
		size += len(`,"zkb":`) + len(zkb)
	}
	if size > MaxSize {
		return Killmail{}, ErrTooLarge
	}
	if err := check(esi, at, 0); err != nil {
		return Killmail{}, err
	}
	if splice {
		if err := check(zkb, ".zkb", 1); err != nil {
			return Killmail{}, err
		}
	}
	out := make([]byte, 0, size)
	if !splice {
		return Killmail{ID: id, SystemID: sys, JSON: append(out, esi...)}, nil
	}
	out = append(out, esi[:len(esi)-1]...) // without the closing brace
	if len(esi) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"zkb":`...)
	out = append(out, zkb...)
	return Killmail{ID: id, SystemID: sys, JSON: append(out, '}')}, nil
}

// ParseMany parses a body holding one killmail object or a JSON array of
// them. An invalid element fails the whole body with an *ElementError that
// names its index.
func ParseMany(body []byte) (kms []Killmail, array bool, err error) {
	c, err := compact(body)
	if err != nil {
		return nil, false, err
	}
	if c[0] != '[' {
		km, err := parseCompact(c)
		if err != nil {
			return nil, false, err
		}
		return []Killmail{km}, false, nil
	}
	gjson.ParseBytes(c).ForEach(func(_, v gjson.Result) bool {
		km, perr := parseCompact(raw(c, v))
		if perr != nil {
			err = &ElementError{Index: len(kms), Err: perr}
			return false
		}
		kms = append(kms, km)
		return true
	})
	if err != nil {
		return nil, true, err
	}
	return kms, true, nil
}

// ElementError is an invalid element of an array body.
type ElementError struct {
	Index int
	Err   error
}

func (e *ElementError) Error() string { return fmt.Sprintf("element %d: %v", e.Index, e.Err) }
func (e *ElementError) Unwrap() error { return e.Err }

// positive reads a JSON integer > 0; strings, fractions and exponents are
// refused.
func positive(r gjson.Result) (int64, bool) {
	if r.Type != gjson.Number {
		return 0, false
	}
	v, err := strconv.ParseInt(r.Raw, 10, 64)
	return v, err == nil && v > 0
}
