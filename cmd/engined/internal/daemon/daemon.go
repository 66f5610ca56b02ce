// Package daemon runs `engine daemon`: a private containerd under
// supervision (or an existing one), the backend engine, and the API server
// on a unix socket, until its context ends.
//
// Run owns everything it starts and stops all of it before returning:
// the API server first (no new requests, streams ended), then the engine
// (containers left running under live-restore, stopped otherwise), then
// the supervised containerd.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/engined/internal/server"
	"github.com/tendhq/tend/libcontainerd/supervisor"
	"github.com/tendhq/tend/network"
)

// Options configure the daemon; the flags of `engine daemon`.
type Options struct {
	Root              string // engine state; default /var/lib/tend
	Socket            string // API socket; default /run/tend/engine.sock
	Namespace         string // containerd namespace; default tend
	LogLevel          string // for the daemon and its containerd
	LiveRestore       bool
	ProbeConcurrency  int
	InitPath          string   // tend-init; empty: next to the engine binary, else in PATH
	ContainerdAddress string   // use this containerd instead of supervising one
	ContainerdState   string   // that containerd's state dir (--state), if known
	ContainerdBinary  string   // binary of the supervised containerd
	CriuPath          []string // directories put first in containerd's PATH
	Version           string
	// MaxImportBytes bounds an image archive sent to the daemon; 0:
	// server.DefaultMaxImportBytes.
	MaxImportBytes int64
	// Ready, when set, is called once the API serves.
	Ready func()

	// Networking: the default bridge device ("none": no
	// networking), its subnet (empty: recorded or picked) and the CNI
	// plugin dirs (empty: network.DefaultPluginDirs).
	Bridge        string
	BridgeSubnet  string
	CNIPluginDirs []string
	// DockerSocket is the Docker Engine API socket (package dockerapi);
	// empty: none. `engine daemon` sets DefaultDockerSocket.
	DockerSocket string
	// registry: how registries are reached (--insecure-registry, certs).
	Registry backend.RegistryConfig
	// ContainersPerShim packs containers into shared shims (see
	// backend.Config.ContainersPerShim).
	ContainersPerShim int
}

// Run runs the daemon until ctx ends.
func Run(ctx context.Context, opts Options) (retErr error) {
	if opts.Root == "" {
		opts.Root = "/var/lib/tend"
	}
	if opts.Socket == "" {
		opts.Socket = "/run/tend/engine.sock"
	}
	if opts.Namespace == "" {
		opts.Namespace = "tend"
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return fmt.Errorf("invalid --root %q: %v: %w", opts.Root, err, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("create engine root: %w", err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return fmt.Errorf("secure engine root: %w", err)
	}
	logger := log.G(ctx).WithField("root", root)
	// The socket is claimed first: a second daemon on the same socket
	// fails before it touches containerd or the records.
	l, err := server.Listen(opts.Socket)
	if err != nil {
		return err
	}
	defer l.Close()
	dl, err := listenDocker(opts)
	if err != nil {
		return err
	}
	if dl != nil {
		defer dl.Close()
	}

	// Shutdown work must finish even though ctx has ended.
	cleanupCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	}

	address, stateDir := opts.ContainerdAddress, opts.ContainerdState
	if address == "" {
		level := opts.LogLevel
		if level == "" || level == "trace" {
			level = "info"
		}
		d, err := supervisor.Start(ctx, supervisor.Config{
			Binary:    opts.ContainerdBinary,
			Root:      filepath.Join(root, "containerd"),
			LogLevel:  level,
			ExtraPath: opts.CriuPath,
			Supervise: true,
		})
		if err != nil {
			return fmt.Errorf("start containerd: %w", err)
		}
		logger.WithField("address", d.Address()).WithField("pid", d.Pid()).Info("containerd started under supervision")
		defer func() {
			sctx, cancel := cleanupCtx()
			defer cancel()
			if err := d.Stop(sctx); err != nil {
				logger.WithError(err).Warn("stop containerd")
				retErr = errors.Join(retErr, err)
			} else {
				logger.Info("containerd stopped")
			}
		}()
		address, stateDir = d.Address(), d.StateDir()
	}

	netm, err := newNetworkManager(root, opts)
	if err != nil {
		return err
	}
	be, err := backend.New(ctx, backend.Config{
		Network:            netm,
		Root:               filepath.Join(root, "engine"),
		ContainerdAddress:  address,
		ContainerdStateDir: stateDir,
		Namespace:          opts.Namespace,
		LiveRestore:        opts.LiveRestore,
		ProbeConcurrency:   opts.ProbeConcurrency,
		InitPath:           opts.InitPath,
		Registry:           opts.Registry,
		// No container binds the daemon's root (containerd's too) unless privileged.
		ProtectedPaths:    []string{root},
		ContainersPerShim: opts.ContainersPerShim,
	})
	if err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	for _, lerr := range be.LoadErrors() {
		logger.WithError(lerr).Warn("container record skipped")
	}
	defer func() {
		sctx, cancel := cleanupCtx()
		defer cancel()
		if err := be.Close(sctx); err != nil {
			logger.WithError(err).Warn("close engine")
			retErr = errors.Join(retErr, err)
		} else if opts.LiveRestore {
			logger.Info("engine closed; containers keep running (live-restore)")
		} else {
			logger.Info("engine closed; containers stopped")
		}
	}()

	srv := server.New(engine{Engine: be}, server.Options{Version: opts.Version, MaxImportBytes: opts.MaxImportBytes})
	logger.WithFields(log.Fields{
		"socket": opts.Socket, "containerd": address, "namespace": opts.Namespace, "live-restore": opts.LiveRestore,
	}).Info("engine API serving")
	dockerDone := serveDocker(ctx, be, opts, root, dl)
	if opts.Ready != nil {
		opts.Ready()
	}
	err = srv.Serve(ctx, l)
	err = errors.Join(err, <-dockerDone)
	logger.Info("engine API stopped")
	return err
}

// newNetworkManager sets up the engine's networks under root/network; nil
// with --bridge none.
func newNetworkManager(root string, opts Options) (*network.Manager, error) {
	if opts.Bridge == "none" {
		return nil, nil
	}
	m, err := network.New(network.Config{
		Root: filepath.Join(root, "network"), PluginDirs: opts.CNIPluginDirs, Bridge: opts.Bridge, Subnet: opts.BridgeSubnet,
	})
	if err != nil {
		return nil, fmt.Errorf("networking: %w (or run without it: --bridge none)", err)
	}
	return m, nil
}
