package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
)

func TestApplyDaemonConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte(`{"root": "/srv/tend", "live-restore": false, "probe-concurrency": 4, "socket": "/from/file.sock"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := &cobra.Command{Use: "daemon", RunE: func(*cobra.Command, []string) error { return nil }}
	path := addConfigFileFlag(cmd)
	root := cmd.Flags().String("root", "/var/lib/tend", "")
	live := cmd.Flags().Bool("live-restore", true, "")
	n := cmd.Flags().Int("probe-concurrency", 0, "")
	sock := cmd.Flags().String("socket", "/run/tend/engine.sock", "")
	if err := cmd.Flags().Parse([]string{"--config-file", cfg, "--socket", "/from/flag.sock"}); err != nil {
		t.Fatal(err)
	}
	if err := applyDaemonConfig(cmd, *path); err != nil {
		t.Fatal(err)
	}
	if *root != "/srv/tend" || *live || *n != 4 || *sock != "/from/flag.sock" {
		t.Errorf("root %q live %v n %d socket %q: want the file's values and the flag's socket", *root, *live, *n, *sock)
	}
	if err := os.WriteFile(cfg, []byte(`{"nope": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := applyDaemonConfig(cmd, *path); err == nil {
		t.Error("an unknown key was accepted")
	}
	// No default file: no error.
	cmd2 := &cobra.Command{Use: "daemon"}
	p2 := addConfigFileFlag(cmd2)
	*p2 = filepath.Join(dir, "missing.json")
	if err := applyDaemonConfig(cmd2, *p2); err != nil {
		t.Errorf("missing default file: %v", err)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
