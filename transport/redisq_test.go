package transport

import (
	"encoding/json"
	"testing"
)

func TestAppendRedisqPackage(t *testing.T) {
	for _, tc := range []struct{ stored, want string }{
		{`{"a":1,"killmail_id":7,"zkb":{"hash":"x"}}`, `{"package":{"killID":7,"killmail":{"a":1,"killmail_id":7},"zkb":{"hash":"x"}}}`},
		{`{"zkb":{"hash":"x"},"killmail_id":7,"b":[1]}`, `{"package":{"killID":7,"killmail":{"killmail_id":7,"b":[1]},"zkb":{"hash":"x"}}}`},
		{`{"killmail_id":7,"zkb":{"v":{"zkb":1}},"c":"zkb"}`, `{"package":{"killID":7,"killmail":{"killmail_id":7,"c":"zkb"},"zkb":{"v":{"zkb":1}}}}`},
		{`{"killmail_id":7}`, `{"package":{"killID":7,"killmail":{"killmail_id":7},"zkb":null}}`},
	} {
		got, err := appendRedisqPackage(nil, []byte(tc.stored))
		if err != nil {
			t.Fatalf("%s: %v", tc.stored, err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.stored, got, tc.want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: invalid JSON", tc.stored)
		}
	}
	if _, err := appendRedisqPackage(nil, []byte(`{"zkb":{}}`)); err == nil {
		t.Errorf("no killmail_id: no error")
	}
}
