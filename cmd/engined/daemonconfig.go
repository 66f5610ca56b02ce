package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// DefaultDaemonConfig is the daemon's config file, as dockerd's
// /etc/docker/daemon.json: a JSON object whose keys are the daemon's flag
// names ("root", "socket", "live-restore", ...). A flag given on the
// command line overrides the file; a missing default file is no error.
const DefaultDaemonConfig = "/etc/tend/daemon.json"

// addConfigFileFlag registers --config-file on the daemon command.
func addConfigFileFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("config-file", DefaultDaemonConfig, "daemon configuration file (JSON; keys are flag names; flags override it)")
}

// applyDaemonConfig sets, from the config file, every flag not given on
// the command line.
func applyDaemonConfig(cmd *cobra.Command, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !cmd.Flags().Changed("config-file") {
			return nil
		}
		return &statusError{Code: 1, Err: fmt.Errorf("daemon config: %w", err)}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return &statusError{Code: 1, Err: fmt.Errorf("daemon config %s: not a JSON object: %v", path, err)}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fl := cmd.Flags()
	for _, k := range keys {
		f := fl.Lookup(k)
		if f == nil || k == "config-file" {
			return &statusError{Code: 1, Err: fmt.Errorf("daemon config %s: unknown key %q: want one of the daemon's flag names (engine daemon --help)", path, k)}
		}
		if f.Changed {
			continue // the command line wins
		}
		vals := []any{m[k]}
		if arr, ok := m[k].([]any); ok {
			vals = arr
		}
		for _, v := range vals {
			s := fmt.Sprint(v)
			if n, ok := v.(float64); ok {
				s = strings.TrimSuffix(fmt.Sprintf("%f", n), ".000000")
			}
			if err := setFlag(fl, k, s); err != nil {
				return &statusError{Code: 1, Err: fmt.Errorf("daemon config %s: %q: %v", path, k, err)}
			}
		}
	}
	return nil
}

func setFlag(fl *pflag.FlagSet, name, value string) error {
	if err := fl.Set(name, value); err != nil {
		return err
	}
	// Set marks the flag as changed; a value from the file is not one
	// the user typed, but nothing reads the difference past this point.
	return nil
}
