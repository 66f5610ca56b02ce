package integration

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestEngineCheckpoint drives checkpoint create/ls/rm and start
// --checkpoint through a real daemon.
func TestEngineCheckpoint(t *testing.T) {
	needCRIU(t)
	root, err := os.MkdirTemp(testEnv.Root, "eng-cp-")
	if err != nil {
		t.Fatal(err)
	}
	d := startEngine(t, root, testEnv.Namespace+"-ckpt")
	t.Cleanup(func() { cleanupEngine(t, d) })
	d.must(t, "image", "import", engineImage(t))
	const name = "ticker"
	d.must(t, "run", "-d", "--name", name, "--restart", "always", testEnv.ImageRef, "sh", "-c", tickScript)

	// counts reads the counter from `engine logs`.
	counts := func() []int { return logCounts(t, d.must(t, "logs", name)) }
	waitCounts := func(n int) []int {
		t.Helper()
		var got []int
		enginePoll(t, counterTimeout, "the counter to reach "+itoa(n), func() bool {
			got = counts()
			return len(got) > 0 && got[len(got)-1] >= n
		})
		return got
	}
	waitCounts(5)

	if out := d.must(t, "checkpoint", "create", name, "cp1"); strings.TrimSpace(out) != "cp1" {
		t.Fatalf("checkpoint create printed %q, want the checkpoint's name", out)
	}
	if r := d.inspect(t, name); r.State != "exited" || r.RestartCount != 0 {
		t.Fatalf("after checkpoint create: state %s restarts %d; want exited, no restart under always", r.State, r.RestartCount)
	}
	before := counts()
	n := before[len(before)-1]

	out := d.must(t, "checkpoint", "ls", name)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Fields(lines[0])[0] != "NAME" || strings.Fields(lines[0])[1] != "CREATED" ||
		strings.Fields(lines[1])[0] != "cp1" || !strings.Contains(lines[1], "ago") {
		t.Fatalf("checkpoint ls: %q; want a NAME CREATED table with cp1", out)
	}

	d.expectFail(t, 1, `no checkpoint "nope"`, "start", "--checkpoint", "nope", name)
	d.expectFail(t, 1, "only a running or paused container can be checkpointed", "checkpoint", "create", name, "cp2")
	d.expectFail(t, 125, "accepts 2 arg(s)", "checkpoint", "create", name)
	d.expectFail(t, 1, "invalid checkpoint name", "checkpoint", "rm", name, "a b")

	if out := d.must(t, "start", "--checkpoint", "cp1", name); strings.TrimSpace(out) != name {
		t.Fatalf("start --checkpoint printed %q", out)
	}
	if r := d.inspect(t, name); r.State != "running" {
		t.Fatalf("after start --checkpoint: state %s; want running", r.State)
	}
	after := waitCounts(n + 5)[len(before):]
	if after[0] <= n || after[0] > n+2 {
		t.Fatalf("restored counter logged %v after %d; want it to go on from %d", after, n, n)
	}
	d.expectFail(t, 1, "already has a checkpoint", "checkpoint", "create", "--leave-running", name, "cp1")

	pid := d.inspect(t, name).Pid
	d.must(t, "checkpoint", "create", "--leave-running", name, "cp2")
	if r := d.inspect(t, name); r.State != "running" || r.Pid != pid {
		t.Fatalf("after checkpoint create --leave-running: state %s pid %d (was %d); want it running on", r.State, r.Pid, pid)
	}
	c := counts()
	waitCounts(c[len(c)-1] + 3)

	var names []string
	for _, line := range strings.Split(strings.TrimSpace(d.must(t, "checkpoint", "ls", "--format", "json", name)), "\n") {
		var cp struct {
			Name    string    `json:"name"`
			Created time.Time `json:"created"`
		}
		if err := json.Unmarshal([]byte(line), &cp); err != nil || cp.Created.IsZero() {
			t.Fatalf("checkpoint ls --format json line %q: %v; want name and created", line, err)
		}
		names = append(names, cp.Name)
	}
	if strings.Join(names, ",") != "cp1,cp2" {
		t.Fatalf("checkpoint ls --format json: %v; want cp1, cp2", names)
	}

	d.must(t, "checkpoint", "rm", name, "cp1")
	d.expectFail(t, 1, `no checkpoint "cp1"`, "checkpoint", "rm", name, "cp1")
	if out := d.must(t, "checkpoint", "ls", name); strings.Contains(out, "cp1") || !strings.Contains(out, "cp2") {
		t.Fatalf("checkpoint ls after rm: %q; want only cp2", out)
	}
	d.expectFail(t, 1, "No such container", "checkpoint", "ls", "no-such-container")
}
