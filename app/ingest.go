package app

import "github.com/killfeed/killfeed/actors"

// IngestConfig configures the upstream sources.
type IngestConfig struct{}

// startIngest starts the configured upstream sources; the returned function
// stops them and waits.
func startIngest(cfg Config, svc *actors.Service) (func(), error) {
	return func() {}, nil
}
