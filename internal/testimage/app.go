package testimage

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AppRef is the name the application test image is imported under.
const AppRef = "docker.io/tend/app:latest"

// The application image's configuration, for tests to compare with.
const (
	AppUser       = "app"
	AppUID        = 1000
	AppGID        = 1000
	AppSupplGID   = 50 // group "staff", which lists app as a member
	AppWorkdir    = "/app"
	AppEntrypoint = "/app/entrypoint.sh"
	AppVolume     = "/data"
	AppStopSignal = "SIGUSR1"
)

// AppEnv is the application image's ENV.
var AppEnv = []string{"PATH=" + DefaultPath, "APP_MODE=test", "APP_GREETING=hello from the image"}

// AppCmd is the application image's CMD.
var AppCmd = []string{"sleep", "100000"}

const (
	appPasswd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n"
	appGroup  = "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n"
	// The entrypoint says how it was called, then runs its arguments.
	appEntrypoint = "#!/bin/sh\necho \"entrypoint: $*\"\nexec \"$@\"\n"
)

// WriteAppArchive writes the application test image as an OCI image-layout
// tar to w: busybox as in WriteOCIArchive, then a layer adding the user
// app (uid 1000, a member of group staff) and /app/entrypoint.sh, then a
// layer adding /data and /app/VERSION. Its config has ENTRYPOINT and CMD,
// ENV, WORKDIR /app, USER app, VOLUME /data and STOPSIGNAL SIGUSR1: what
// a real application image has and busybox lacks.
func WriteAppArchive(w io.Writer, busybox, ref string) error {
	if ref == "" {
		return fmt.Errorf("testimage: empty image reference: give one such as %q: %w", AppRef, errdefs.ErrInvalidArgument)
	}
	base, err := entries(busybox)
	if err != nil {
		return err
	}
	users := []entry{
		{path: "etc", mode: 0o755, dir: true},
		{path: "etc/group", mode: 0o644, data: []byte(appGroup)},
		{path: "etc/passwd", mode: 0o644, data: []byte(appPasswd)},
		{path: "home", mode: 0o755, dir: true},
		{path: "home/app", mode: 0o755, dir: true, uid: AppUID, gid: AppGID},
		{path: "app", mode: 0o755, dir: true, uid: AppUID, gid: AppGID},
		{path: "app/entrypoint.sh", mode: 0o755, data: []byte(appEntrypoint)},
	}
	data := []entry{
		{path: "app", mode: 0o755, dir: true, uid: AppUID, gid: AppGID},
		{path: "app/VERSION", mode: 0o644, data: []byte("1.0\n")},
		{path: "data", mode: 0o755, dir: true, uid: AppUID, gid: AppGID},
	}
	return writeImage(w, ref, [][]entry{base, users, data}, ocispec.ImageConfig{
		User:         AppUser,
		Env:          AppEnv,
		Entrypoint:   []string{AppEntrypoint},
		Cmd:          AppCmd,
		WorkingDir:   AppWorkdir,
		Volumes:      map[string]struct{}{AppVolume: {}},
		StopSignal:   AppStopSignal,
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
	}, "tend testimage app from "+filepath.Base(busybox))
}

// WriteAppArchiveFile writes the application image archive to path (0600)
// atomically.
func WriteAppArchiveFile(path, busybox, ref string) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".app-*.tar")
	if err != nil {
		return fmt.Errorf("testimage: %w", err)
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := WriteAppArchive(f, busybox, ref); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("testimage: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("testimage: %w", err)
	}
	return nil
}
