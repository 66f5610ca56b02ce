package backend

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/healthcheck/initprobe"
	"github.com/tendhq/tend/libcontainerd"
)

// InitBinary is the name of tend-init, looked up next to the running
// executable and in PATH when Config.InitPath is empty.
const InitBinary = "tend-init"

// initSocketDir is a container's probe socket dir, under its record dir.
const initSocketDir = "init"

// findInit returns the tend-init to use: path, or else InitBinary next to
// the executable, or else in PATH.
func findInit(path string) (string, error) {
	if path != "" {
		return path, checkInit(path)
	}
	var tried []string
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), InitBinary)
		if err := checkInit(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath(InitBinary); err == nil {
		return p, checkInit(p)
	}
	tried = append(tried, "$PATH")
	return "", fmt.Errorf("no %s in %v: build it with `gcc -static -Os -o tend-init cmd/tend-init/tend-init.c` (scripts/setup.sh does) and set Config.InitPath: %w", InitBinary, tried, errdefs.ErrNotFound)
}

// checkInit makes sure path is a statically linked executable: it runs
// inside containers of any image, which may have no dynamic loader.
func checkInit(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", InitBinary, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s at %s is not an executable file: %w", InitBinary, path, errdefs.ErrInvalidArgument)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s at %s: not an ELF executable: %v: %w", InitBinary, path, err, errdefs.ErrInvalidArgument)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s at %s is dynamically linked: build it with gcc -static: %w", InitBinary, path, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// installInit copies src to <root>/bin/tend-init unless the copy is
// already the same: containers bind-mount the copy, which stays put while
// the original is rebuilt or removed. A changed binary replaces the copy by
// rename, so running containers keep the one they started with.
func installInit(root, src string) (string, error) {
	dir := filepath.Join(root, "bin")
	dst := filepath.Join(dir, InitBinary)
	want, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", InitBinary, err)
	}
	if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, want) {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("install %s: %w", InitBinary, err)
	}
	tmp, err := os.CreateTemp(dir, "."+InitBinary+"-*")
	if err != nil {
		return "", fmt.Errorf("install %s: %w", InitBinary, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(want)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr, os.Chmod(tmp.Name(), 0o755)); err != nil {
		return "", fmt.Errorf("install %s: %w", InitBinary, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("install %s: %w", InitBinary, err)
	}
	return dst, nil
}

// wantInit decides whether a container runs under tend-init: as asked, or
// (Init unset) when it has a health check and tend-init is available.
func (e *Engine) wantInit(o *CreateOptions) (bool, error) {
	if o.Init != nil {
		if *o.Init && e.initPath == "" {
			return false, fmt.Errorf("init requested but tend-init is not available: %w: %w", e.initErr, errdefs.ErrFailedPrecondition)
		}
		return *o.Init, nil
	}
	if o.Health == nil || e.initPath == "" {
		return false, nil
	}
	_, probes := o.Health.Argv()
	return probes, nil
}

// withInit mounts tend-init and the probe socket dir into spec and returns
// the create option that puts tend-init in front of the command.
func (e *Engine) withInit(id string, spec *specs.Spec) (libcontainerd.CreateOption, error) {
	dir := filepath.Join(e.store.containerDir(id), initSocketDir)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create probe socket dir: %w", err)
	}
	e.mountInit(spec)
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: initprobe.SocketDir, Type: "bind", Source: dir, Options: []string{"rbind", "rw", "nosuid", "nodev", "noexec"}},
	)
	return libcontainerd.WithInit(initprobe.InitPath, "--probe-socket", initprobe.SocketDir+"/"+initprobe.SocketName,
		"--exit-record", initprobe.SocketDir+"/"+initprobe.ExitRecordName, "--"), nil
}

// wantProbeInit reports whether a container that does not run under
// tend-init still gets it mounted: it has exec probes, which then run
// under tend-init's probe mode (initprobe.SubreaperArgv), so that nothing
// a probe starts outlives it whatever PID 1 is. Docker bind-mounts
// docker-init the same way for --init; here it is only a file, never PID 1.
func (e *Engine) wantProbeInit(o *CreateOptions) bool {
	if e.initPath == "" || o.Health == nil {
		return false
	}
	_, probes := o.Health.Argv()
	return probes
}

// mountInit bind-mounts tend-init read-only at initprobe.InitPath; the
// runtime creates the mount point in the rootfs (and /sbin if the image
// has none) before it makes the rootfs read-only.
func (e *Engine) mountInit(spec *specs.Spec) {
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: initprobe.InitPath, Type: "bind", Source: e.initPath, Options: []string{"rbind", "ro", "nosuid", "nodev"}})
}

// mountsOwnInit reports whether the container whose task is the host
// process pid has this engine's tend-init at initprobe.InitPath: one
// created by an older engine may have none, or one since replaced on the
// host that may lack what a newer engine asks of it (bind mounts keep the
// file they were made with; installInit replaces it by rename).
func (e *Engine) mountsOwnInit(pid uint32) bool {
	return e.initPath != "" && initprobe.Mounted(int(pid), e.initPath)
}

// probeSocket is the host path of a container's probe socket.
func (e *Engine) probeSocket(id string) string {
	return filepath.Join(e.store.containerDir(id), initSocketDir, initprobe.SocketName)
}
