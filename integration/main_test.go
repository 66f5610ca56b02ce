// Package integration tests tend against a real containerd and runc.
//
// TestMain runs a private containerd (libcontainerd/supervisor) under a short
// directory in /tmp, in a namespace of its own, imports the busybox test
// image and builds a plain rootfs; tests reach it through testEnv and the
// helpers in harness_test.go. Afterwards it deletes everything it made and
// fails the run if a containerd shim of its daemon survives.
//
// The package is skipped (with a message, exit 0) only when not run as root
// or when there is no containerd binary. Environment:
//
//	TEND_TEST_IMAGE   OCI archive of the test image (default: built in-process)
//	TEND_TEST_ROOTFS  busybox root filesystem dir (default: built in-process)
//	TEND_CRIU_PATH    dir prepended to containerd's PATH (default: ../build/criu-path's content)
//	TEND_CONTAINERD_PATH  dir holding another containerd and its shim (scripts/containerd-alt.sh)
//	                  to run the suite against; first in containerd's PATH
//	TEND_BUSYBOX      busybox binary to build from (default: /bin/busybox)
//
// Relative paths are taken relative to the repository root.
package integration

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/internal/testimage"
	"github.com/tendhq/tend/libcontainerd/supervisor"
)

// snapshotter is the snapshotter the test image is unpacked with.
const snapshotter = "overlayfs"

// runcStateRoot is where containerd's runc shim keeps runc state, per
// namespace, whatever containerd's --state says.
const runcStateRoot = "/run/containerd/runc"

func TestMain(m *testing.M) {
	flag.Parse() // for -test.timeout, read by the watchdog
	if reason := skipReason(); reason != "" {
		fmt.Fprintf(os.Stderr, "SKIP integration tests: %s\n", reason)
		os.Exit(0)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func skipReason() string {
	if os.Geteuid() != 0 {
		return "they run containerd and runc and need root: run them as root (scripts/test.sh does)"
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		return "no containerd binary in PATH: install containerd (scripts/setup.sh does)"
	}
	return ""
}

// run sets up, runs the tests and tears down; it returns m.Run's code and
// what went wrong around it.
func run(m *testing.M) (code int, retErr error) {
	cleanStaleRuns()
	root, err := os.MkdirTemp("/tmp", "tend-it-")
	if err != nil {
		return 1, err
	}
	testEnv.Root = root
	testEnv.Namespace = "tend-it-" + strconv.Itoa(os.Getpid())
	testEnv.FIFORoot = filepath.Join(root, "fifo")
	testEnv.ImageRef = testimage.DefaultRef
	defer func() {
		if err := teardown(); err != nil {
			retErr = joinErr(retErr, err)
		}
	}()
	if err := os.MkdirAll(testEnv.FIFORoot, 0o700); err != nil {
		return 1, err
	}
	// Lets a later run clean up after this one if it dies without teardown.
	owner := fmt.Sprintf("%d %s\n", os.Getpid(), testEnv.Namespace)
	if err := os.WriteFile(filepath.Join(root, ownerFile), []byte(owner), 0o600); err != nil {
		return 1, err
	}
	stopWatchdog := watchdog()
	defer stopWatchdog()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := supervisor.Config{Root: filepath.Join(root, "c"), LogLevel: "debug"}
	if dir := criuPath(); dir != "" {
		cfg.ExtraPath = []string{dir}
	}
	if dir := repoPath(os.Getenv("TEND_CONTAINERD_PATH")); dir != "" {
		// The shim is found by name in PATH, so the dir goes first.
		cfg.Binary = filepath.Join(dir, "containerd")
		cfg.ExtraPath = append([]string{dir}, cfg.ExtraPath...)
	}
	d, err := supervisor.Start(ctx, cfg)
	if err != nil {
		return 1, err
	}
	testEnv.Daemon, testEnv.Address = d, d.Address()

	if err := importImage(ctx, root); err != nil {
		return 1, err
	}
	if testEnv.InitPath, err = buildInit(root); err != nil {
		return 1, err
	}
	if testEnv.Rootfs = repoPath(os.Getenv("TEND_TEST_ROOTFS")); testEnv.Rootfs == "" {
		testEnv.Rootfs = filepath.Join(root, "rootfs")
		if err := testimage.BuildRootfs(testEnv.Rootfs, busyboxPath()); err != nil {
			return 1, err
		}
	}
	if _, err := os.Stat(filepath.Join(testEnv.Rootfs, "bin", "sh")); err != nil {
		return 1, fmt.Errorf("test rootfs %s has no bin/sh: %w (rebuild it: go run ./tools/mkimage -rootfs build/rootfs)", testEnv.Rootfs, err)
	}
	version := "unknown"
	if c, err := client.New(testEnv.Address); err == nil {
		if v, err := c.Version(ctx); err == nil {
			version = v.Version
		}
		c.Close()
	}
	fmt.Fprintf(os.Stderr, "integration: containerd %s pid %d on %s, namespace %s, image %s, rootfs %s\n",
		version, d.Pid(), testEnv.Address, testEnv.Namespace, testEnv.ImageRef, testEnv.Rootfs)
	return m.Run(), nil
}

// importImage imports the test image (TEND_TEST_IMAGE, else built into
// root) and unpacks it.
func importImage(ctx context.Context, root string) error {
	archive := repoPath(os.Getenv("TEND_TEST_IMAGE"))
	if archive == "" {
		archive = filepath.Join(root, "busybox.tar")
		if err := testimage.WriteOCIArchiveFile(archive, busyboxPath(), testEnv.ImageRef); err != nil {
			return err
		}
	}
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("open test image: %w (build it: go run ./tools/mkimage -o build/busybox.tar)", err)
	}
	defer f.Close()
	c, err := client.New(testEnv.Address, client.WithDefaultNamespace(testEnv.Namespace))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, testEnv.Namespace)
	imgs, err := c.Import(ctx, f)
	if err != nil {
		return fmt.Errorf("import %s: %w", archive, err)
	}
	found := false
	for _, img := range imgs {
		found = found || img.Name == testEnv.ImageRef
	}
	if !found {
		return fmt.Errorf("import %s gave images %v, not %s: rebuild the archive with tools/mkimage", archive, imgs, testEnv.ImageRef)
	}
	img, err := c.GetImage(ctx, testEnv.ImageRef)
	if err != nil {
		return err
	}
	if err := img.Unpack(ctx, snapshotter); err != nil {
		return fmt.Errorf("unpack %s with %s: %w", testEnv.ImageRef, snapshotter, err)
	}
	return nil
}

func busyboxPath() string {
	if p := os.Getenv("TEND_BUSYBOX"); p != "" {
		return p
	}
	return "/bin/busybox"
}

// criuPath is the dir holding a private criu: TEND_CRIU_PATH, else the
// content of build/criu-path (written by scripts/setup.sh), else "".
func criuPath() string {
	if p := os.Getenv("TEND_CRIU_PATH"); p != "" {
		return repoPath(p)
	}
	b, err := os.ReadFile(repoPath("build/criu-path"))
	if err != nil {
		return ""
	}
	return repoPath(strings.TrimSpace(string(b)))
}

// repoPath makes p absolute, relative paths being relative to the
// repository root (go test runs in the package directory).
func repoPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	abs, err := filepath.Abs(filepath.Join("..", p))
	if err != nil {
		return p
	}
	return abs
}

// teardown deletes everything in our namespace, stops containerd, checks
// that no shim of ours survived, and removes whatever is left on the host.
func teardown() error {
	var errs []error
	if testEnv.Daemon != nil {
		if err := deleteAll(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup through containerd: %w", err))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := testEnv.Daemon.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop containerd: %w", err))
		}
		cancel()
		if leaked := waitShimsGone(10 * time.Second); len(leaked) > 0 {
			errs = append(errs, fmt.Errorf("containerd shims leaked (killed now):\n  %s", strings.Join(leaked, "\n  ")))
		}
	}
	// Safety net: whatever survived the orderly cleanup.
	for _, pid := range ourShims() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := deleteRuncState(); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(testEnv.Root); err != nil {
		errs = append(errs, err)
	}
	if testEnv.Root != "" {
		if err := os.RemoveAll(testEnv.Root); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", testEnv.Root, err))
		}
	}
	var err error
	for _, e := range errs {
		err = joinErr(err, e)
	}
	return err
}

// deleteAll deletes every task, container, snapshot and image of our
// namespace, and the namespace.
func deleteAll() error {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), testEnv.Namespace), time.Minute)
	defer cancel()
	// A test may have left containerd down.
	if err := ensureServing(ctx); err != nil {
		return err
	}
	c, err := client.New(testEnv.Address, client.WithDefaultNamespace(testEnv.Namespace))
	if err != nil {
		return err
	}
	defer c.Close()
	var errs []error
	note := func(what string, err error) {
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	containers, err := c.Containers(ctx)
	note("list containers", err)
	for _, ctr := range containers {
		note("delete task "+ctr.ID(), deleteTask(ctx, ctr))
		note("delete container "+ctr.ID(), ctr.Delete(ctx, client.WithSnapshotCleanup))
	}
	// The images, each with containerd's garbage collection run before
	// Delete returns: it removes every snapshot nothing references any
	// more, including one that Walk cannot show (containerd 1.6's Walk skips
	// a snapshot whose metadata outlived its snapshotter entry, and such a
	// hidden child makes its parent's Remove fail).
	imgs, err := c.ImageService().List(ctx)
	note("list images", err)
	for _, img := range imgs {
		note("delete image "+img.Name, c.ImageService().Delete(ctx, img.Name, images.SynchronousDelete()))
	}
	// Snapshots still referenced (by a lease, or left by a test): leaves
	// first, so repeat until a pass removes nothing.
	sn := c.SnapshotService(snapshotter)
	for range 64 {
		var keys []string
		note("list snapshots", sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			keys = append(keys, fmt.Sprintf("%s (%s, parent %q, labels %v)", info.Name, info.Kind, info.Parent, info.Labels))
			return nil
		}))
		removed := 0
		var why []string
		for i, k := range keys {
			name, _, _ := strings.Cut(k, " ")
			if err := sn.Remove(ctx, name); err != nil {
				keys[i] += ": " + err.Error()
				why = append(why, keys[i])
				continue
			}
			removed++
		}
		if removed == 0 {
			if len(keys) > 0 {
				var held []string
				ls, _ := c.LeasesService().List(ctx)
				for _, l := range ls {
					held = append(held, fmt.Sprintf("%s %v", l.ID, l.Labels))
				}
				errs = append(errs, fmt.Errorf("snapshots left (leases: %v):\n  %s", held, strings.Join(why, "\n  ")))
			}
			break
		}
	}
	if err := c.NamespaceService().Delete(ctx, testEnv.Namespace); err != nil {
		fmt.Fprintf(os.Stderr, "integration: namespace %s not deleted (harmless, gone with our root): %v\n", testEnv.Namespace, err)
	}
	var out error
	for _, e := range errs {
		out = joinErr(out, e)
	}
	return out
}

// deleteTask kills a container's task and deletes it; NotFound when none.
func deleteTask(ctx context.Context, ctr client.Container) error {
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return err
	}
	_, err = task.Delete(ctx, client.WithProcessKill)
	return err
}

// ensureServing starts containerd again if a test left it killed.
func ensureServing(ctx context.Context) error {
	if pingContainerd(ctx) == nil {
		return nil
	}
	return testEnv.Daemon.Restart(ctx)
}

func pingContainerd(ctx context.Context) error {
	c, err := client.New(testEnv.Address)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err
}

// ourShims returns the pids of containerd shims started for our daemon:
// their command line names our socket or our namespace.
func ourShims() []int {
	var pids []int
	for _, s := range shimProcs() {
		pids = append(pids, s.pid)
	}
	return pids
}

type shimProc struct {
	pid  int
	args string
}

func shimProcs() []shimProc {
	return shimProcsOf(testEnv.Address, testEnv.Namespace)
}

// shimProcsOf returns the shims whose command line names a socket under
// address or the namespace ns (or ns-*, made by tests on our daemon).
func shimProcsOf(address, ns string) []shimProc {
	if address == "" {
		return nil
	}
	dirs, _ := os.ReadDir("/proc")
	var out []shimProc
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Fields(strings.ReplaceAll(string(b), "\x00", " "))
		if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		ours := false
		for i, a := range args {
			if strings.HasPrefix(a, address) ||
				(a == "-namespace" && i+1 < len(args) && (args[i+1] == ns || strings.HasPrefix(args[i+1], ns+"-"))) {
				ours = true
			}
		}
		if ours {
			out = append(out, shimProc{pid: pid, args: strings.Join(args, " ")})
		}
	}
	return out
}

// waitShimsGone polls until no shim of ours runs or the timeout passes, and
// returns the survivors, described.
func waitShimsGone(timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		shims := shimProcs()
		if len(shims) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var s []string
			for _, p := range shims {
				s = append(s, fmt.Sprintf("pid %d: %s", p.pid, p.args))
			}
			return s
		}
		<-tick.C
	}
}

// deleteRuncState force-deletes runc containers left in our namespace's
// runc root (killing their processes) and removes the directory.
func deleteRuncState() error {
	if testEnv.Namespace == "" {
		return nil
	}
	var out error
	dirs, _ := filepath.Glob(filepath.Join(runcStateRoot, testEnv.Namespace+"-*"))
	for _, dir := range append([]string{filepath.Join(runcStateRoot, testEnv.Namespace)}, dirs...) {
		out = joinErr(out, deleteRuncDir(dir))
	}
	return out
}

func deleteRuncDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	var leaked []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		leaked = append(leaked, e.Name())
		if runc, err := exec.LookPath("runc"); err == nil {
			exec.Command(runc, "--root", dir, "delete", "--force", e.Name()).Run()
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if len(leaked) > 0 {
		return fmt.Errorf("runc containers left in %s (force-deleted): %v", dir, leaked)
	}
	return nil
}

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(dir string) error {
	if dir == "" {
		return nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	var out error
	if len(points) > 0 {
		out = fmt.Errorf("mounts left under %s (unmounted now): %v", dir, points)
	}
	for _, e := range errs {
		out = joinErr(out, e)
	}
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 for space...) of
// /proc/self/mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func joinErr(a, b error) error {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return fmt.Errorf("%w\n%w", a, b)
}

// ownerFile, in a run's root, holds "pid namespace" of the test binary.
const ownerFile = "owner"

// watchdog tears down shortly before -test.timeout would panic the test
// binary (a panic skips TestMain's teardown and leaves shims, mounts and
// dirs behind): it dumps the goroutines, cleans up and exits 1. The
// returned func stops it.
func watchdog() (stop func()) {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return func() {}
	}
	timeout, err := time.ParseDuration(f.Value.String())
	if err != nil || timeout <= 0 {
		return func() {}
	}
	// Teardown takes seconds, more when a test left a mess.
	margin := min(max(timeout/10, 30*time.Second), timeout/2)
	timer := time.AfterFunc(timeout-margin, func() {
		fmt.Fprintf(os.Stderr, "integration: tests still running %v before the %v timeout: cleaning up and failing; goroutines:\n", margin, timeout)
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		if err := teardown(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		}
		os.Exit(1)
	})
	return func() { timer.Stop() }
}

// cleanStaleRuns removes what earlier runs left when their test binary died
// before teardown (killed, crashed): only runs whose owner pid is gone.
func cleanStaleRuns() {
	roots, _ := filepath.Glob("/tmp/tend-it-*")
	for _, root := range roots {
		b, err := os.ReadFile(filepath.Join(root, ownerFile))
		if err != nil {
			continue // not ours to judge
		}
		var pid int
		var ns string
		if _, err := fmt.Sscan(string(b), &pid, &ns); err != nil || pid <= 0 || ns == "" {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // still running
		}
		fmt.Fprintf(os.Stderr, "integration: cleaning up after dead run %d (%s, %s)\n", pid, root, ns)
		for _, s := range shimProcsOf(root+"/", ns) {
			syscall.Kill(s.pid, syscall.SIGKILL)
		}
		dirs, _ := filepath.Glob(filepath.Join(runcStateRoot, ns+"-*"))
		for _, dir := range append([]string{filepath.Join(runcStateRoot, ns)}, dirs...) {
			deleteRuncDir(dir)
		}
		unmountUnder(root)
		os.RemoveAll(root)
	}
}

// buildInit builds a static tend-init into root/bin for the engines of this
// run (gcc, as scripts/setup.sh does).
func buildInit(root string) (string, error) {
	dir := filepath.Join(root, "bin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(self), "..", "cmd", "tend-init", "tend-init.c")
	path := filepath.Join(dir, "tend-init")
	if out, err := exec.Command("gcc", "-static", "-Os", "-o", path, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc %s (scripts/setup.sh installs gcc and libc6-dev): %v\n%s", src, err, out)
	}
	return path, nil
}
