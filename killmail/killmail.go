package killmail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// envelope holds the fields of every accepted shape; which are set tells the
// shape apart.
type envelope struct {
	KillmailID    json.Number     `json:"killmail_id"`
	SolarSystemID json.Number     `json:"solar_system_id"`
	ESI           json.RawMessage `json:"esi"`      // R2Z2 file
	KillID        json.Number     `json:"killID"`   // RedisQ package
	Killmail      json.RawMessage `json:"killmail"` // RedisQ package
	ZKB           json.RawMessage `json:"zkb"`
}

// Parse turns one JSON object — an ESI killmail, an R2Z2 file object or a
// RedisQ package that carries the killmail — into its stored form.
func Parse(raw []byte) (Killmail, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		if !json.Valid(raw) {
			return Killmail{}, ErrInvalidJSON
		}
		return Killmail{}, ErrNotObject
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return Killmail{}, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	switch {
	case isObject(env.ESI): // R2Z2 file: the killmail is "esi"
		return fromESI(env.ESI, env.ZKB)
	case isObject(env.Killmail): // RedisQ package
		return fromESI(env.Killmail, env.ZKB)
	}
	return fromESI(raw, nil)
}

// FromESI builds the stored form of an ESI killmail and an optional zkb block
// (nil or JSON null for none), as an ESI fetch for a RedisQ package gives them.
func FromESI(esi, zkb []byte) (Killmail, error) {
	esi = bytes.TrimSpace(esi)
	if len(esi) == 0 || esi[0] != '{' {
		if !json.Valid(esi) {
			return Killmail{}, ErrInvalidJSON
		}
		return Killmail{}, ErrNotObject
	}
	return fromESI(esi, zkb)
}

func fromESI(esi, zkb []byte) (Killmail, error) {
	var ids struct {
		KillmailID    json.Number     `json:"killmail_id"`
		SolarSystemID json.Number     `json:"solar_system_id"`
		ZKB           json.RawMessage `json:"zkb"`
	}
	if err := json.Unmarshal(esi, &ids); err != nil {
		return Killmail{}, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	id, ok := positive(ids.KillmailID)
	if !ok {
		return Killmail{}, ErrNoID
	}
	sys, ok := positive(ids.SolarSystemID)
	if !ok {
		return Killmail{}, ErrNoSystem
	}
	var buf bytes.Buffer
	buf.Grow(len(esi) + len(zkb) + 8)
	if err := json.Compact(&buf, esi); err != nil {
		return Killmail{}, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	if isObject(zkb) && ids.ZKB == nil {
		buf.Truncate(buf.Len() - 1) // drop the closing brace
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		buf.WriteString(`"zkb":`)
		if err := json.Compact(&buf, zkb); err != nil {
			return Killmail{}, fmt.Errorf("%w: zkb: %v", ErrInvalidJSON, err)
		}
		buf.WriteByte('}')
	}
	if buf.Len() > MaxSize {
		return Killmail{}, ErrTooLarge
	}
	return Killmail{ID: id, SystemID: sys, JSON: bytes.Clone(buf.Bytes())}, nil
}

// ParseMany parses a body holding one killmail object or a JSON array of
// them. An invalid element fails the whole body with an *ElementError that
// names its index.
func ParseMany(raw []byte) (kms []Killmail, array bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		km, err := Parse(raw)
		if err != nil {
			return nil, false, err
		}
		return []Killmail{km}, false, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, true, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	kms = make([]Killmail, 0, len(elems))
	for i, e := range elems {
		km, err := Parse(e)
		if err != nil {
			return nil, true, &ElementError{Index: i, Err: err}
		}
		kms = append(kms, km)
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

func isObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

func positive(n json.Number) (int64, bool) {
	if n == "" {
		return 0, false
	}
	v, err := n.Int64()
	return v, err == nil && v > 0
}
