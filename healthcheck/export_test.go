package healthcheck

import "time"

// FirstDelay exposes the first-probe stagger to the external tests.
func FirstDelay(id string, cfg Config) time.Duration {
	return firstDelay(&entry{id: id, cfg: cfg.WithDefaults()})
}
