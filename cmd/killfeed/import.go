package main

import (
	"context"
	"errors"
	"io"
)

// runImport runs `killfeed import FILE…`.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("import: not implemented yet")
}
