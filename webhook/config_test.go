package webhook_test

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/webhook"
)

// parseTerms accepts regions and all, as a stand-in for the API's parser.
func parseTerms(terms url.Values) (webhook.Filter, error) {
	var f webhook.Filter
	for k, vs := range terms {
		switch k {
		case "all":
			if vs[0] != "true" {
				return f, errors.New("all: must be true or false")
			}
			f.Selection.Systems = append(f.Selection.Systems, 0)
		case "regions[]":
			f.Selection.Systems = append(f.Selection.Systems, 1)
		case "min_value":
		default:
			return f, fmt.Errorf("%s: not a filter term", strings.TrimSuffix(k, "[]"))
		}
	}
	return f, nil
}

const goodFile = `
webhooks:
  - name: alliance-feed
    url: https://discord.com/api/webhooks/123/abc
    format: discord
    filter:
      regions: [10000002, 10000043]
  - name: big-kills
    url: http://example.org/hook
    format: json
    secret: s3cret
    filter: {all: true, min_value: 10000000000}
`

var _ = Describe("the webhooks file", func() {
	It("reads every entry with its filter as query terms", func() {
		hooks, err := webhook.Parse([]byte(goodFile), parseTerms)
		Expect(err).NotTo(HaveOccurred())
		Expect(hooks).To(HaveLen(2))
		Expect(hooks[0]).To(And(HaveField("Name", "alliance-feed"), HaveField("Format", webhook.FormatDiscord),
			HaveField("URL", "https://discord.com/api/webhooks/123/abc")))
		Expect(hooks[0].Filter.Terms).To(Equal(url.Values{"regions[]": {"10000002", "10000043"}}))
		Expect(hooks[1].Filter.Terms).To(Equal(url.Values{"all": {"true"}, "min_value": {"10000000000"}}))
		Expect(hooks[1].Secret).To(Equal("s3cret"))
		Expect(hooks[1].ClientID()).To(Equal("webhook/big-kills"))
	})

	It("has no webhooks when empty", func() {
		for _, f := range []string{"", "# nothing\n", "webhooks:\n", "webhooks: []\n"} {
			hooks, err := webhook.Parse([]byte(f), parseTerms)
			Expect(err).NotTo(HaveOccurred(), f)
			Expect(hooks).To(BeEmpty())
		}
	})

	DescribeTable("refuses a file naming the entry and the field",
		func(entry, want string) {
			f := "webhooks:\n  - name: ok\n    url: https://a.example/x\n    format: json\n    filter: {all: true}\n" + entry
			_, err := webhook.Parse([]byte(f), parseTerms)
			Expect(err).To(MatchError(webhook.ErrConfig))
			Expect(err.Error()).To(ContainSubstring(want))
		},
		Entry("an unknown key", "  - {name: x, url: 'https://a.example', format: json, filter: {all: true}, colour: red}",
			`webhooks[1] (x): unknown field "colour"`),
		Entry("an unknown format", "  - {name: x, url: 'https://a.example', format: xml, filter: {all: true}}",
			`webhooks[1] (x): format: "xml" is not discord or json`),
		Entry("an unknown filter term", "  - {name: x, url: 'https://a.example', format: json, filter: {alliance: [1]}}",
			`webhooks[1] (x): filter: alliance: not a filter term`),
		Entry("a filter term's bad value", "  - {name: x, url: 'https://a.example', format: json, filter: {all: maybe}}",
			`webhooks[1] (x): filter: all: must be true or false`),
		Entry("no filter", "  - {name: x, url: 'https://a.example', format: json}", `webhooks[1] (x): filter: required`),
		Entry("a URL that is not http", "  - {name: x, url: 'ftp://a.example', format: json, filter: {all: true}}",
			`webhooks[1] (x): url: must be an http:// or https:// URL`),
		Entry("a secret on discord", "  - {name: x, url: 'https://a.example', format: discord, secret: s, filter: {all: true}}",
			`webhooks[1] (x): secret: only the json format is signed`),
		Entry("a repeated name", "  - {name: ok, url: 'https://a.example', format: json, filter: {all: true}}",
			`webhooks[1] (ok): name: already used by webhooks[0]`),
		Entry("a bad name", "  - {name: 'a b', url: 'https://a.example', format: json, filter: {all: true}}",
			`webhooks[1]: name: must be 1-64 of`),
		Entry("no name", "  - {url: 'https://a.example', format: json, filter: {all: true}}", `webhooks[1]: name: required`),
		Entry("an unknown top-level key", "hooks: []", `unknown key "hooks"`),
		Entry("a filter that is not a mapping", "  - {name: x, url: 'https://a.example', format: json, filter: [1]}",
			`webhooks[1] (x): filter: must be a mapping`),
	)

	It("is read from a file, whose name an error carries", func() {
		path := filepath.Join(GinkgoT().TempDir(), "hooks.yaml")
		Expect(os.WriteFile(path, []byte("webhooks: 3\n"), 0o600)).To(Succeed())
		_, err := webhook.LoadFile(path, parseTerms)
		Expect(err).To(MatchError(ContainSubstring(path + ": webhooks file: line 1: webhooks: must be a list")))
		Expect(os.WriteFile(path, []byte(goodFile), 0o600)).To(Succeed())
		hooks, err := webhook.LoadFile(path, parseTerms)
		Expect(err).NotTo(HaveOccurred())
		Expect(hooks).To(HaveLen(2))
	})
})
