package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// engineRaw sends one request with path exactly as given (no cleaning) and
// returns the status and the error message.
func engineRaw(t *testing.T, d *engineDaemon, method, path, body string) (int, string) {
	t.Helper()
	conn, err := net.Dial("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: engine\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", method, path, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var er struct {
		Message string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&er)
	return resp.StatusCode, er.Message
}

// testEngineHardening: paths and names that could name another object are
// refused at every layer, numbers out of range are refused with their
// limits, and broken input is the client's error, against a real daemon.
func testEngineHardening(t *testing.T, d *engineDaemon, img string) {
	name := "hardening"
	d.must(t, "run", "-d", "--name", name, img, "sleep", "1000")
	defer d.run(t, nil, "rm", "-f", name)
	stillRunning := func(what string) {
		t.Helper()
		if rec := d.inspect(t, name); rec.State != "running" {
			t.Fatalf("after %s: container is %s, want running", what, rec.State)
		}
	}

	// `checkpoint rm C ..` once removed C through a 307 to DELETE /containers/C.
	d.expectFail(t, 1, "invalid checkpoint name", "checkpoint", "rm", name, "..")
	d.expectFail(t, 1, "invalid container reference", "inspect", ".")
	d.expectFail(t, 1, "invalid container reference", "logs", ".")
	d.expectFail(t, 1, "invalid container reference", "rm", "-f", name+"/..")
	for _, p := range []string{
		"/v1/containers/" + name + "/checkpoints/..",
		"/v1/containers/" + name + "/checkpoints/%2e%2e",
		"/v1/containers/" + name + "/checkpoints/x/..",
		"/v1/containers/" + name + "/checkpoints/..%2f..",
		"/v1//containers/" + name,
	} {
		if status, msg := engineRaw(t, d, "DELETE", p, ""); status != http.StatusBadRequest {
			t.Errorf("DELETE %s: %d %q, want 400", p, status, msg)
		}
	}
	if status, _ := engineRaw(t, d, "GET", "/v1/containers/.", ""); status != http.StatusBadRequest {
		t.Errorf("GET /v1/containers/.: %d, want 400", status)
	}
	if status, _ := engineRaw(t, d, "PUT", "/v1/containers/"+name, ""); status != http.StatusMethodNotAllowed {
		t.Errorf("PUT on a container: %d, want 405", status)
	}
	stillRunning("unclean paths")

	// A stop timeout that overflows is refused, not an immediate SIGKILL.
	d.expectFail(t, 125, "invalid --time", "stop", "-t", "99999999999", name)
	if status, msg := engineRaw(t, d, "POST", "/v1/containers/"+name+"/stop?t=10000000000", ""); status != http.StatusBadRequest || !strings.Contains(msg, "2147483647") {
		t.Errorf("stop with an overflowing timeout: %d %q, want 400 with the limit", status, msg)
	}
	d.expectFail(t, 1, "invalid signal", "kill", "-s", "65", name)
	stillRunning("out-of-range stop and kill")

	d.expectFail(t, 125, "more CPUs than any host", "run", "--rm", "--cpus", "1e300", img, "true")
	d.expectFail(t, 125, "less than one byte", "run", "--rm", "-m", "0.0000001k", img, "true")
	for _, tc := range []struct{ body, msg string }{
		{`{"image":"` + img + `","resources":{"memory_bytes":4096}}`, "minimum is 6MiB"},
		{`{"image":"` + img + `","resources":{"cpus":100000}}`, "range of CPUs is from 0.01"},
		{`{"image":"` + img + `","labels":{"":"x"}}`, "empty key"},
		{`{"image":"` + img + `","cmd":[""]}`, "first word is empty"},
	} {
		if status, msg := engineRaw(t, d, "POST", "/v1/containers", tc.body); status != http.StatusBadRequest || !strings.Contains(msg, tc.msg) {
			t.Errorf("create %s: %d %q, want 400 saying %q", tc.body, status, msg, tc.msg)
		}
	}

	// Broken image archives are the client's to fix.
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"garbage.tar", []byte(strings.Repeat("\x13garbage\xff", 600)), "not a tar"},
		{"empty.tar", nil, "empty image archive"},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		d.expectFail(t, 1, tc.msg, "image", "import", p)
	}
	whole, err := os.ReadFile(engineImage(t))
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "truncated.tar")
	if err := os.WriteFile(trunc, whole[:len(whole)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	d.expectFail(t, 1, "not a complete tar", "image", "import", trunc)
	plain := filepath.Join(dir, "plain.tar")
	if err := os.WriteFile(plain, plainTar(t), 0o600); err != nil {
		t.Fatal(err)
	}
	d.expectFail(t, 1, "holds no image", "image", "import", plain)
	if status, msg := engineRawFile(t, d, "/v1/images/import", plain); status != http.StatusBadRequest {
		t.Errorf("import of a tar that holds no image: %d %q, want 400", status, msg)
	}

	// A command runc cannot run: 400, and the container stays created
	// with the error in its record.
	bad := "hardening-nocmd"
	d.must(t, "create", "--name", bad, img, "no-such-command")
	defer d.run(t, nil, "rm", "-f", bad)
	if status, msg := engineRaw(t, d, "POST", "/v1/containers/"+bad+"/start", ""); status != http.StatusBadRequest || !strings.Contains(msg, "executable file not found") {
		t.Errorf("start of a missing command: %d %q, want 400 saying what runc said", status, msg)
	}
	if rec := d.inspect(t, bad); rec.State != "created" || rec.Error == "" {
		t.Errorf("after the failed start: state %s, error %q; want created with the error", rec.State, rec.Error)
	}
	stillRunning("the refused requests")
}

// plainTar is a valid tar that holds no image.
func plainTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("not an image\n")
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// engineRawFile POSTs the file at path as the body of a request.
func engineRawFile(t *testing.T, d *engineDaemon, path, file string) (int, string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return engineRaw(t, d, "POST", path, string(b))
}
