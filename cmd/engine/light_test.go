package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCLIIsLight fails when the CLI grows heavy again: engine starts for
// every command, and the containerd client, gRPC, protobuf and CNI cost
// ~24 ms of package inits and a binary twice the size.
// They belong to engined. Data the CLI needs lives in leaf packages
// (backend/types, network/types, libcontainerd/types, io/archive).
func TestCLIIsLight(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/tendhq/tend/cmd/engine").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	heavy := []string{
		"github.com/containerd/containerd/",
		"google.golang.org/grpc",
		"google.golang.org/protobuf",
		"github.com/containernetworking/",
		"github.com/containerd/go-cni",
		"github.com/containerd/cgroups",
		"github.com/containerd/ttrpc",
		"github.com/containerd/typeurl",
	}
	// Small pure packages of the containerd module the leaves share with
	// the engine, so that a rule has one definition: containerd's id rule
	// (lazily compiled regexps) and the list of capabilities.
	allowed := map[string]bool{
		"github.com/containerd/containerd/v2/pkg/identifiers":     true,
		"github.com/containerd/containerd/v2/internal/lazyregexp": true,
		"github.com/containerd/containerd/v2/pkg/cap":             true,
	}
	// The engine's heavy packages themselves (their leaf sub-packages
	// are fine).
	own := map[string]bool{
		"github.com/tendhq/tend/backend":       true,
		"github.com/tendhq/tend/libcontainerd": true,
		"github.com/tendhq/tend/network":       true,
	}
	for _, p := range strings.Fields(string(out)) {
		if allowed[p] {
			continue
		}
		if own[p] || strings.HasPrefix(p, "github.com/tendhq/tend/cmd/engined/") {
			t.Errorf("cmd/engine depends on %s: the CLI must not import the engine's runtime (use its leaf types package)", p)
		}
		for _, h := range heavy {
			if strings.HasPrefix(p, h) {
				t.Errorf("cmd/engine depends on %s: the CLI must stay light (find who imports it: go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/engine)", p)
			}
		}
	}
}
