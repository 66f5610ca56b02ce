package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/libcontainerd"
	"github.com/tendhq/tend/libcontainerd/supervisor"
)

// testEnv is the private containerd and test material TestMain set up.
var testEnv struct {
	// Address is containerd's gRPC socket.
	Address string
	// Namespace is the containerd namespace of this run.
	Namespace string
	// ImageRef names the imported, unpacked busybox image.
	ImageRef string
	// Rootfs is a busybox root filesystem dir, for oci.WithRootFSPath.
	Rootfs string
	// Root is the private temporary dir holding everything of this run.
	Root string
	// FIFORoot is a private (0700) dir for stdio FIFOs: use FIFORoot/<id>.
	FIFORoot string
	// Daemon is the supervised containerd.
	Daemon *supervisor.Daemon
	// InitPath is a tend-init built for this run (backend.Config.InitPath).
	InitPath string
}

// containerdMu serialises killContainerd, startContainerd and
// restartContainerd; containerdDown says whether a test left it killed.
var (
	containerdMu   sync.Mutex
	containerdDown bool
)

// rawClient returns a plain containerd client on testEnv, namespaced by
// default, closed when the test ends.
func rawClient(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(testEnv.Address, client.WithDefaultNamespace(testEnv.Namespace))
	if err != nil {
		t.Fatalf("containerd client on %s: %v", testEnv.Address, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx returns a context in the test namespace, cancelled when the test
// ends.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(namespaces.WithNamespace(context.Background(), testEnv.Namespace))
	t.Cleanup(cancel)
	return ctx
}

var (
	idInvalid = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)
	// containerd ids take one separator at a time.
	idSeparators = regexp.MustCompile(`[_.-]{2,}`)
)

// maxTestID leaves room for suffixes tests append ("-flush-<nanos>", 26
// characters) within containerd's 76.
const maxTestID = 50

// testID returns a container id derived from t.Name(): the same for every
// call in one test, different between tests, valid for containerd and runc.
func testID(t testing.TB) string {
	name := t.Name()
	id := strings.Trim(idSeparators.ReplaceAllString(idInvalid.ReplaceAllString(name, "-"), "-"), "-_.")
	sum := sha256.Sum256([]byte(name))
	// Sanitising may map two names to one id; a hash of the name keeps them
	// apart whenever the id had to change or be cut.
	if id != name || len(id) > maxTestID || id == "" {
		h := hex.EncodeToString(sum[:4])
		if len(id) > maxTestID-len(h)-1 {
			id = strings.TrimRight(id[:maxTestID-len(h)-1], "-_.")
		}
		id = strings.TrimLeft(id+"-"+h, "-_.")
	}
	if err := libcontainerd.ValidateID(id); err != nil {
		t.Fatalf("testID made invalid id %q from %q: %v", id, name, err)
	}
	return id
}

// killContainerd SIGKILLs containerd, as a crash would (shims keep running),
// and waits for it to die. It stays down until startContainerd; if the test
// ends first, containerd is started again then.
func killContainerd(t testing.TB) {
	t.Helper()
	containerdMu.Lock()
	defer containerdMu.Unlock()
	if err := testEnv.Daemon.Kill(); err != nil {
		t.Fatalf("kill containerd: %v", err)
	}
	if !containerdDown {
		containerdDown = true
		t.Cleanup(func() {
			containerdMu.Lock()
			defer containerdMu.Unlock()
			if containerdDown {
				if err := restartDaemon(); err != nil {
					t.Errorf("start containerd after the test left it killed: %v", err)
				}
			}
		})
	}
}

// startContainerd starts containerd again with the same configuration and
// waits until it serves.
func startContainerd(t testing.TB) {
	t.Helper()
	containerdMu.Lock()
	defer containerdMu.Unlock()
	if err := restartDaemon(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
}

// restartContainerd stops containerd gracefully and starts it again.
func restartContainerd(t testing.TB) {
	t.Helper()
	containerdMu.Lock()
	defer containerdMu.Unlock()
	if err := restartDaemon(); err != nil {
		t.Fatalf("restart containerd: %v", err)
	}
}

// restartDaemon is called with containerdMu held.
func restartDaemon() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testEnv.Daemon.Restart(ctx); err != nil {
		return err
	}
	containerdDown = false
	return nil
}

// cleanupContainer removes a container whatever state the test left it
// in: kills and deletes its task, deletes it with its snapshot and removes
// its FIFO dir. NotFound is fine. Register it with t.Cleanup.
func cleanupContainer(t testing.TB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), testEnv.Namespace), 30*time.Second)
	defer cancel()
	containerdMu.Lock()
	if containerdDown {
		if err := restartDaemon(); err != nil {
			t.Errorf("cleanup %s: start containerd: %v", id, err)
		}
	}
	containerdMu.Unlock()

	c, err := client.New(testEnv.Address, client.WithDefaultNamespace(testEnv.Namespace))
	if err != nil {
		t.Errorf("cleanup %s: %v", id, err)
		return
	}
	defer c.Close()
	ctr, err := c.LoadContainer(ctx, id)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		t.Errorf("cleanup %s: load container: %v", id, err)
	default:
		if err := deleteTask(ctx, ctr); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("cleanup %s: delete task: %v", id, err)
		}
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("cleanup %s: delete container: %v", id, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(testEnv.FIFORoot, id)); err != nil {
		t.Errorf("cleanup %s: remove FIFO dir: %v", id, err)
	}
}
