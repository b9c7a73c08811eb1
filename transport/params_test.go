package transport

import "testing"

// FuzzRawQueryParam checks the readers of the poll's hot path against the
// ones they stand for: rawQueryParam against parseQuery's values, and
// validClientID against clientIDPattern.
func FuzzRawQueryParam(f *testing.F) {
	for _, q := range []string{
		"client_id=foo&systems=1&wait=5", "wait=1&wait=2", "w%61it=3&client_id=x", "wait=%35", "wait=%zz",
		"wait", "wait=&wait=4", "&&wait=+7+", "client_id=a%2Bb", "client_id=" + "é", "client_id=a+b&wait=0",
		"client%5Fid=x.y_z:1@2-3", "wa+it=1", "client_id=" + string(make([]byte, 129)),
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > maxFuzzInput {
			t.Skip()
		}
		q, err := parseQuery(raw)
		for _, name := range []string{"wait", "client_id"} {
			got := rawQueryParam(raw, name)
			if err == nil && got != q.Get(name) {
				t.Fatalf("rawQueryParam(%q, %s) = %q, parseQuery has %q", raw, name, got, q.Get(name))
			}
			if validClientID(got) != clientIDPattern.MatchString(got) {
				t.Fatalf("validClientID(%q) = %v, the pattern says otherwise", got, validClientID(got))
			}
		}
	})
}
