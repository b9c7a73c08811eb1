package app

import (
	"context"
	"errors"
	"sync"

	"github.com/killfeed/killfeed/actors"
	"github.com/killfeed/killfeed/ingest"
)

// IngestConfig configures the upstream sources. The zero value starts
// none; the killfeed command turns R2Z2 on by default (--r2z2).
type IngestConfig struct {
	// R2Z2Enabled starts the R2Z2 poller.
	R2Z2Enabled bool
	// R2Z2 configures the R2Z2 poller; its zero value means the defaults.
	R2Z2 ingest.R2Z2Config
	// RedisQ configures a RedisQ-style poller, started when RedisQ.URL is set.
	RedisQ ingest.RedisQConfig
	// Remote configures the Proto.Actor remote ingest endpoint, started when
	// Remote.Listen is set.
	Remote ingest.RemoteConfig
}

// Validate reports invalid fields by their flag names.
func (c IngestConfig) Validate() error {
	var errs []error
	if c.R2Z2Enabled {
		errs = append(errs, c.R2Z2.Validate())
	}
	if c.RedisQ.URL != "" {
		errs = append(errs, c.RedisQ.Validate())
	}
	if c.Remote.Listen != "" {
		errs = append(errs, c.Remote.Validate())
	}
	return errors.Join(errs...)
}

// startIngest starts the configured upstream sources; the returned function
// stops them and waits.
func startIngest(cfg Config, svc *actors.Service) (func(), error) {
	ic := cfg.Ingest
	if err := ic.Validate(); err != nil {
		return nil, err
	}
	var runners []func(context.Context) error
	if ic.R2Z2Enabled {
		c := ic.R2Z2
		if c.Logger == nil {
			c.Logger = cfg.Logger.With("source", "r2z2")
		}
		p, err := ingest.NewR2Z2(svc, c)
		if err != nil {
			return nil, err
		}
		runners = append(runners, p.Run)
	}
	if ic.RedisQ.URL != "" {
		c := ic.RedisQ
		if c.Logger == nil {
			c.Logger = cfg.Logger.With("source", "redisq")
		}
		p, err := ingest.NewRedisQ(svc, c)
		if err != nil {
			return nil, err
		}
		runners = append(runners, p.Run)
	}
	var rem *ingest.Remote
	if ic.Remote.Listen != "" {
		c := ic.Remote
		if c.Logger == nil {
			c.Logger = cfg.Logger.With("source", "remote")
		}
		var err error
		if rem, err = ingest.StartRemote(svc, c); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range runners {
		wg.Go(func() { _ = run(ctx) })
	}
	return func() {
		cancel()
		wg.Wait()
		if rem != nil {
			rem.Stop()
		}
	}, nil
}
