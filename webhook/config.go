package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/killfeed/killfeed/selection"
)

// Formats of a webhook.
const (
	FormatJSON    = "json"
	FormatDiscord = "discord"
)

// Webhook is one entry of the webhooks file.
type Webhook struct {
	// Name is unique in the file, [A-Za-z0-9_.-]{1,64}; the webhook's log
	// client is "webhook/<Name>".
	Name string
	// URL is where events are POSTed (http or https).
	URL string
	// Format is FormatJSON or FormatDiscord.
	Format string
	// Secret, for FormatJSON, signs each body (X-Killfeed-Signature); ""
	// means unsigned.
	Secret string
	// Filter is the parsed filter.
	Filter Filter
}

// ClientID is the log client of the webhook. '/' is never in a client_id
// of the HTTP API, so no reader can take a webhook's offsets.
func (w Webhook) ClientID() string { return "webhook/" + w.Name }

// same says whether two entries deliver the same way to the same place.
func (w Webhook) same(o Webhook) bool {
	return w.Name == o.Name && w.URL == o.URL && w.Format == o.Format && w.Secret == o.Secret &&
		w.Filter.Terms.Encode() == o.Filter.Terms.Encode()
}

// Filter is a webhook's filter: its terms, as GET /api/killfeed takes them
// in its query, and what they parse to.
type Filter struct {
	// Terms are the filter's terms as query parameters (alliances[]=1&…).
	Terms url.Values
	// Selection is what the log reads for it: its systems (the offset
	// keys) and the predicate over each killmail's facts.
	Selection selection.Selection
	// Entities are the characters, corporations, alliances and factions
	// the filter names, which colour a Discord embed; empty when it names
	// none.
	Entities Entities
}

// Entities are ids of the parties a filter names.
type Entities struct {
	Characters, Corporations, Alliances, Factions []int64
}

// Empty says whether no entity is named.
func (e Entities) Empty() bool {
	return len(e.Characters)+len(e.Corporations)+len(e.Alliances)+len(e.Factions) == 0
}

// ParseFilter parses a filter's terms; an error names the term.
type ParseFilter func(terms url.Values) (Filter, error)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// LoadFile reads a webhooks file (see Parse).
func LoadFile(path string, parse ParseFilter) ([]Webhook, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	hooks, err := Parse(b, parse)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return hooks, nil
}

// Parse reads a webhooks file:
//
//	webhooks:
//	  - name: alliance-feed
//	    url: https://discord.com/api/webhooks/123/abc
//	    format: discord
//	    filter: {alliances: [99000001], min_value: 100000000}
//
// Unknown keys, formats and filter terms are errors naming the entry and
// the field. An empty file has no webhooks.
func Parse(b []byte, parse ParseFilter) ([]Webhook, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: one YAML document expected", ErrConfig)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, configErr(root, "the file must be a mapping with a webhooks list")
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "webhooks" {
			return nil, configErr(k, "unknown key %q (only webhooks)", k.Value)
		}
		list = v
	}
	if list == nil || (list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, configErr(list, "webhooks: must be a list of entries")
	}
	hooks := make([]Webhook, 0, len(list.Content))
	seen := make(map[string]int)
	for i, n := range list.Content {
		w, err := parseEntry(i, n, parse)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[w.Name]; dup {
			return nil, configErr(n, "webhooks[%d] (%s): name: already used by webhooks[%d]", i, w.Name, j)
		}
		seen[w.Name] = i
		hooks = append(hooks, w)
	}
	return hooks, nil
}

func configErr(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrConfig, n.Line, fmt.Sprintf(format, args...))
}

func parseEntry(i int, n *yaml.Node, parse ParseFilter) (Webhook, error) {
	var w Webhook
	entry := "webhooks[" + strconv.Itoa(i) + "]"
	if n.Kind != yaml.MappingNode {
		return w, configErr(n, "%s: must be a mapping (name, url, format, secret, filter)", entry)
	}
	// The name first, so that every later error names the entry by it.
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k, v := n.Content[j], n.Content[j+1]; k.Value == "name" {
			if v.Kind != yaml.ScalarNode || !nameRE.MatchString(v.Value) {
				return w, configErr(v, "%s: name: must be 1-64 of A-Z a-z 0-9 _ . -", entry)
			}
			w.Name = v.Value
			entry += " (" + w.Name + ")"
		}
	}
	if w.Name == "" {
		return w, configErr(n, "%s: name: required", entry)
	}
	var filter *yaml.Node
	seen := map[string]*yaml.Node{} // each field's value, whose line an error names
	at := func(field string) *yaml.Node {
		if v := seen[field]; v != nil {
			return v
		}
		return n
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		if seen[k.Value] != nil {
			return w, configErr(k, "%s: %s: given twice", entry, k.Value)
		}
		seen[k.Value] = v
		scalar := func() (string, error) {
			if v.Kind != yaml.ScalarNode {
				return "", configErr(v, "%s: %s: must be a string", entry, k.Value)
			}
			return v.Value, nil
		}
		var err error
		switch k.Value {
		case "name":
		case "url":
			w.URL, err = scalar()
		case "format":
			w.Format, err = scalar()
		case "secret":
			w.Secret, err = scalar()
		case "filter":
			filter = v
		default:
			return w, configErr(k, "%s: unknown field %q (name, url, format, secret, filter)", entry, k.Value)
		}
		if err != nil {
			return w, err
		}
	}
	if u, err := url.Parse(w.URL); w.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return w, configErr(at("url"), "%s: url: must be an http:// or https:// URL", entry)
	}
	switch w.Format {
	case FormatJSON, FormatDiscord:
	case "":
		return w, configErr(n, "%s: format: required (discord or json)", entry)
	default:
		return w, configErr(at("format"), "%s: format: %q is not discord or json", entry, w.Format)
	}
	if w.Secret != "" && w.Format != FormatJSON {
		return w, configErr(at("secret"), "%s: secret: only the json format is signed", entry)
	}
	if filter == nil {
		return w, configErr(n, "%s: filter: required (e.g. {all: true} or {regions: [10000002]})", entry)
	}
	terms, err := filterTerms(entry, filter)
	if err != nil {
		return w, err
	}
	if w.Filter, err = parse(terms); err != nil {
		return w, configErr(filter, "%s: filter: %v", entry, err)
	}
	w.Filter.Terms = terms
	return w, nil
}

// filterTerms turns a filter mapping into query parameters: a list gives
// name[]=v for each element, a scalar name=v.
func filterTerms(entry string, n *yaml.Node) (url.Values, error) {
	if n.Kind != yaml.MappingNode {
		return nil, configErr(n, "%s: filter: must be a mapping of terms (e.g. {regions: [10000002]})", entry)
	}
	terms := url.Values{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		name := k.Value
		if name == "" || strings.ContainsAny(name, "[]&=") {
			return nil, configErr(k, "%s: filter: %q is not a filter term", entry, name)
		}
		if _, dup := terms[name]; dup {
			return nil, configErr(k, "%s: filter: %s: given twice", entry, name)
		}
		if _, dup := terms[name+"[]"]; dup {
			return nil, configErr(k, "%s: filter: %s: given twice", entry, name)
		}
		switch v.Kind {
		case yaml.ScalarNode:
			terms.Set(name, v.Value)
		case yaml.SequenceNode:
			if len(v.Content) == 0 {
				return nil, configErr(v, "%s: filter: %s: an empty list", entry, name)
			}
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					return nil, configErr(e, "%s: filter: %s: list elements must be scalars", entry, name)
				}
				terms.Add(name+"[]", e.Value)
			}
		default:
			return nil, configErr(v, "%s: filter: %s: must be a value or a list", entry, name)
		}
	}
	return terms, nil
}
