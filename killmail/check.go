package killmail

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of a stored killmail: the killmail object is
// depth 1, its "victim" object depth 2, and so on. Real killmails nest 5
// levels deep (items in containers); a decoder on any client (Python's
// json, a browser) handles MaxDepth without trouble.
const MaxDepth = 32

// Errors of the stored-form rules, wrapped in a *PathError that names where
// the killmail breaks them.
var (
	// ErrInvalidUTF8 is a string (or object key) that is not valid UTF-8: a
	// websocket text frame carrying it is refused by every browser, and a
	// JSON decoder refuses the document.
	ErrInvalidUTF8 = errors.New("string is not valid UTF-8")
	// ErrTooDeep is an array or object nested deeper than MaxDepth.
	ErrTooDeep = fmt.Errorf("nested deeper than %d levels", MaxDepth)
)

// PathError is a value of a killmail that may not be stored, with its JSON
// path from the killmail object: ".victim.items[3].x", or `["a b"]` for a
// key that is not a plain name.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string { return "killmail" + e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// Check applies the stored-form rules to one compact, valid JSON value:
// every string and key is valid UTF-8 and nothing nests deeper than
// MaxDepth. Parse, ParseMany and FromESI call it on everything they store,
// so every ingest path (HTTP, R2Z2, RedisQ, remote actors, import) keeps
// the same rules; a *PathError names what breaks them.
func Check(c []byte) error { return check(c, "", 0) }

// frame is one open array or object during check.
type frame struct {
	obj              bool
	wantKey          bool
	keyStart, keyEnd int // the current key of an object, inside c
	idx              int // the current element of an array
}

// check is Check of a value found at path prefix, depth levels below the
// killmail object.
func check(c []byte, prefix string, depth int) error {
	var buf [MaxDepth + 1]frame
	stack := buf[:0]
	for i := 0; i < len(c); i++ {
		switch c[i] {
		case '{', '[':
			if depth+len(stack) >= MaxDepth {
				return &PathError{Path: prefix + path(c, stack), Err: ErrTooDeep}
			}
			stack = append(stack, frame{obj: c[i] == '{', wantKey: c[i] == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if top := &stack[len(stack)-1]; top.obj {
				top.wantKey = true
			} else {
				top.idx++
			}
		case '"':
			start, ascii := i+1, true
			for i++; c[i] != '"'; i++ {
				switch {
				case c[i] == '\\':
					i++
				case c[i] >= utf8.RuneSelf:
					ascii = false
				}
			}
			isKey := len(stack) > 0 && stack[len(stack)-1].wantKey
			if isKey {
				top := &stack[len(stack)-1]
				top.keyStart, top.keyEnd, top.wantKey = start, i, false
			}
			if !ascii && !utf8.Valid(c[start:i]) {
				return &PathError{Path: prefix + path(c, stack), Err: ErrInvalidUTF8}
			}
		}
	}
	return nil
}

// path is the JSON path of the current value of stack.
func path(c []byte, stack []frame) string {
	var b strings.Builder
	for _, f := range stack {
		if !f.obj {
			b.WriteString("[" + strconv.Itoa(f.idx) + "]")
			continue
		}
		key := string(c[f.keyStart:f.keyEnd])
		if plainName(key) {
			b.WriteString("." + key)
		} else {
			// The key as it appears in the JSON text, its bytes that are
			// not UTF-8 written as \x escapes.
			b.WriteString("[" + strconv.Quote(key) + "]")
		}
	}
	return b.String()
}

// plainName reports whether key can follow a dot in a path.
func plainName(key string) bool {
	if key == "" {
		return false
	}
	for i, r := range key {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
