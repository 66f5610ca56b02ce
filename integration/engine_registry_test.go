package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEngineCLIRegistry drives the CLI: login (docker's config file),
// push, run --pull, pull, save, load, image inspect, tag, prune, logout,
// against a registry with htpasswd auth and TLS from a test CA.
func TestEngineCLIRegistry(t *testing.T) {
	reg := startRegistry(t, registryOpts{auth: true, tls: true})
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	root, err := os.MkdirTemp(testEnv.Root, "eng-reg-")
	if err != nil {
		t.Fatal(err)
	}
	ns := freshNamespace(t, "engine-reg")
	d := startEngine(t, root, ns, "--registry-certs-dir", reg.certsDir())
	t.Cleanup(func() { cleanupEngine(t, d) })
	d.must(t, "image", "import", engineImage(t))
	ref := reg.host + "/cli/busybox:v1"
	d.must(t, "tag", "busybox", ref)

	d.expectFail(t, 1, "engine login "+reg.host, "push", ref)
	d.expectFail(t, 1, "refused the credentials", "login", "-u", reg.user, "-p", "wrong", reg.host)
	out, errs, code := d.run(t, strings.NewReader(reg.password+"\n"), "login", "-u", reg.user, "--password-stdin", reg.host)
	if code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: exit %d\n%s%s", code, out, errs)
	}
	fi, err := os.Stat(filepath.Join(cfgDir, "config.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json after login: %v, mode %v; want 0600", err, fi)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Auths[reg.host].Auth == "" {
		t.Fatalf("config.json %s: want auths[%s]", b, reg.host)
	}
	out = d.must(t, "push", ref)
	if !strings.Contains(out, "v1: digest: sha256:") {
		t.Errorf("push printed %q", out)
	}

	// save, then remove and load back.
	archive := filepath.Join(t.TempDir(), "saved.tar")
	d.must(t, "save", "-o", archive, ref)
	d.must(t, "image", "rm", ref)
	if out := d.must(t, "load", "-i", archive); !strings.Contains(out, "Loaded image: "+ref) {
		t.Errorf("load printed %q", out)
	}
	var insp []struct {
		Ref          string `json:"ref"`
		Architecture string `json:"architecture"`
	}
	if err := json.Unmarshal([]byte(d.must(t, "image", "inspect", ref)), &insp); err != nil || len(insp) != 1 || insp[0].Ref != ref || insp[0].Architecture == "" {
		t.Fatalf("image inspect: %v %+v", err, insp)
	}

	// run pulls the missing image (--pull missing).
	d.must(t, "image", "rm", ref)
	out, errs, code = d.run(t, nil, "run", "--rm", ref, "echo", "pulled-and-ran")
	if code != 0 || !strings.Contains(out, "pulled-and-ran") || !strings.Contains(errs, "Unable to find image") {
		t.Fatalf("run of a missing image: exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
	d.expectFail(t, 125, "not found", "run", "--pull", "never", "--rm", reg.host+"/cli/other:v1", "true")
	out = d.must(t, "pull", ref)
	if !strings.Contains(out, "Image is up to date") {
		t.Errorf("second pull printed %q", out)
	}
	if out := d.must(t, "pull", "-q", ref); strings.TrimSpace(out) != ref {
		t.Errorf("pull -q printed %q", out)
	}

	if out := d.must(t, "logout", reg.host); !strings.Contains(out, "Removing login credentials") {
		t.Errorf("logout printed %q", out)
	}
	d.must(t, "image", "rm", ref)
	d.expectFail(t, 1, "engine login", "pull", ref)

	out = d.must(t, "image", "prune", "-a")
	if !strings.Contains(out, "Total reclaimed space") || !strings.Contains(out, "busybox") {
		t.Errorf("image prune -a printed %q", out)
	}
}
