// Command vulncheck runs govulncheck over the module when its vulnerability
// database can be reached, and otherwise says that it skipped it and why,
// without failing: CI machines without internet access still pass.
//
// KILLFEED_VULNDB names a local copy of the database (a directory, or a
// file:// or https:// URL), which is used without probing the network.
//
//	go run ./internal/tools/vulncheck
//	KILLFEED_VULNDB=/srv/vulndb go run ./internal/tools/vulncheck
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// defaultDB is govulncheck's default database.
const defaultDB = "https://vuln.go.dev"

func main() {
	os.Exit(run())
}

func run() int {
	args := []string{"tool", "govulncheck"}
	if db := os.Getenv("KILLFEED_VULNDB"); db != "" {
		if !strings.Contains(db, "://") {
			abs, err := filepath.Abs(db)
			if err != nil {
				fmt.Fprintln(os.Stderr, "vulncheck: KILLFEED_VULNDB:", err)
				return 2
			}
			db = "file://" + filepath.ToSlash(abs)
		}
		args = append(args, "-db", db)
		fmt.Println("govulncheck: using the vulnerability database at", db)
	} else if err := probe(defaultDB + "/index/db.json.gz"); err != nil {
		fmt.Printf("govulncheck SKIPPED: its vulnerability database %s cannot be reached (%v).\n"+
			"  Set KILLFEED_VULNDB to a local copy of the database to run it offline.\n", defaultDB, err)
		return 0
	}
	cmd := exec.Command("go", append(args, "./...")...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		return 2
	}
	return 0
}

// probe asks for the database's index within a few seconds.
func probe(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HEAD %s: %s", url, resp.Status)
	}
	return nil
}
