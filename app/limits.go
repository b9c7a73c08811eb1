package app

import (
	"errors"

	"github.com/killfeed/killfeed/transport"
)

// DefaultMaxClients is the cap on live polling clients of a zero
// Config.MaxClients.
const DefaultMaxClients = 200_000

func (c Config) maxClients() int {
	switch {
	case c.MaxClients == 0:
		return DefaultMaxClients
	case c.MaxClients < 0:
		return 0 // eventlog: no cap
	}
	return c.MaxClients
}

func (c Config) validateLimits() error {
	for _, p := range c.Limits.TrustedProxies {
		if !p.IsValid() {
			return errors.New("trusted-proxies: invalid prefix")
		}
	}
	return nil
}

func (c Config) readKeys() (*transport.ReadKeys, error) {
	if c.ReadKeysFile == "" {
		return nil, nil
	}
	k, err := transport.LoadReadKeys(c.ReadKeysFile)
	if err == nil && k.Len() == 0 {
		c.Logger.Warn("the read keys file holds no key: every read request is refused until keys are added and killfeed reloads (SIGHUP)",
			"file", c.ReadKeysFile)
	}
	return k, err
}

// Reload re-reads the read keys file, so that keys added to it are
// accepted and keys removed from it are refused from now on, and the
// webhooks file, so that its changes take effect (see
// webhook.Manager.Apply). A file that does not load leaves what it
// configures as it was, and is logged. Without either file it does
// nothing.
func (a *App) Reload() error {
	return errors.Join(a.reloadKeys(), a.reloadWebhooks())
}

func (a *App) reloadKeys() error {
	if a.keys == nil {
		return nil
	}
	if err := a.keys.Reload(); err != nil {
		a.cfg.Logger.Error("reload failed; the read keys are unchanged", "err", err)
		return err
	}
	if a.keys.Len() == 0 {
		a.cfg.Logger.Warn("read keys reloaded: the file holds no key, every read request is refused", "file", a.cfg.ReadKeysFile)
		return nil
	}
	a.cfg.Logger.Info("read keys reloaded", "keys", a.keys.Len())
	return nil
}
