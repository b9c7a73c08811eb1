package transport

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// ReadKeys is the set of read keys the read endpoints require when it is
// set: only SHA-256 digests of the keys are held. It is safe for
// concurrent use; Reload replaces the set from its file.
type ReadKeys struct {
	path string
	mu   sync.RWMutex
	keys [][sha256.Size]byte
}

// LoadReadKeys reads a keys file: one key a line, either the key itself or
// sha256:<64 hex digits> of it; blank lines and lines starting with # are
// skipped, and so is the rest of a line after " #".
func LoadReadKeys(path string) (*ReadKeys, error) {
	k := &ReadKeys{path: path}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload reads the file again; on an error the keys stay as they were.
func (k *ReadKeys) Reload() error {
	b, err := os.ReadFile(k.path)
	if err != nil {
		return fmt.Errorf("read-keys-file: %w", err)
	}
	keys, err := parseReadKeys(b)
	if err != nil {
		return fmt.Errorf("read-keys-file %s: %w", k.path, err)
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}

// Len is how many keys are loaded.
func (k *ReadKeys) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys)
}

func parseReadKeys(b []byte) ([][sha256.Size]byte, error) {
	var keys [][sha256.Size]byte
	seen := make(map[[sha256.Size]byte]bool)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("line %d: a key has no blanks", n)
		}
		var d [sha256.Size]byte
		if h, ok := strings.CutPrefix(line, "sha256:"); ok {
			raw, err := hex.DecodeString(h)
			if err != nil || len(raw) != sha256.Size {
				return nil, fmt.Errorf("line %d: sha256: needs 64 hex digits", n)
			}
			copy(d[:], raw)
		} else {
			d = sha256.Sum256([]byte(line))
		}
		if !seen[d] {
			seen[d] = true
			keys = append(keys, d)
		}
	}
	return keys, sc.Err()
}

// owner returns the owner token of key (the hex of its digest), or false
// when it is not a loaded key. Every loaded digest is compared, in
// constant time, whatever matches.
func (k *ReadKeys) owner(key string) (string, bool) {
	d := sha256.Sum256([]byte(key))
	k.mu.RLock()
	found := 0
	for i := range k.keys {
		found |= subtle.ConstantTimeCompare(d[:], k.keys[i][:])
	}
	k.mu.RUnlock()
	if found == 0 {
		return "", false
	}
	return hex.EncodeToString(d[:]), true
}

// ctxOwner is the echo.Context key of the request's read-key owner token.
const ctxOwner = "killfeed.owner"

// requestKey is the bearer token of r, or its key query parameter.
func requestKey(r *http.Request) string {
	if tok, ok := bearer(r); ok {
		return tok
	}
	return r.URL.Query().Get("key")
}

// authorizeRead checks the read key of c when keys are configured, and
// remembers its owner token for the client_id binding.
func (s *Server) authorizeRead(c echo.Context) error {
	if s.cfg.ReadKeys == nil {
		return nil
	}
	key := requestKey(c.Request())
	if key == "" {
		s.limits.rejected[LimitKey].Inc()
		return &limitError{code: http.StatusUnauthorized, limit: LimitKey,
			msg: "required (Authorization: Bearer <key>, or ?key=<key>)"}
	}
	owner, ok := s.cfg.ReadKeys.owner(key)
	if !ok {
		s.limits.rejected[LimitKey].Inc()
		return &limitError{code: http.StatusUnauthorized, limit: LimitKey, msg: "not a valid read key"}
	}
	c.Set(ctxOwner, owner)
	return nil
}

// ownerOf is the owner token authorizeRead found ("" without read keys).
func ownerOf(c echo.Context) string {
	o, _ := c.Get(ctxOwner).(string)
	return o
}
