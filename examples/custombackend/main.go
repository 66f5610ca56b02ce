// Command custombackend shows how to embed libcontainerd with a Backend of
// your own: the Backend is the one callback through which every task event
// (start, exit, OOM, pause, exec) reaches the embedder, one container at a
// time and in order.
//
// It runs a container from a root filesystem directory, prints each event,
// and reports the init process's exit:
//
//	go run ./examples/custombackend -address /run/containerd/containerd.sock -rootfs build/rootfs -- sh -c 'exit 3'
//
// Run it as root against a containerd you may use (a private one started
// with libcontainerd/supervisor is safest).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/tendhq/tend/io/attach"
	"github.com/tendhq/tend/libcontainerd"
)

// printer is a libcontainerd.Backend that prints every event and hands the
// exit of each init process to whoever waits for it.
type printer struct {
	out io.Writer

	mu    sync.Mutex
	exits map[string]chan libcontainerd.EventInfo // container id -> its init exit
}

var _ libcontainerd.Backend = (*printer)(nil)

func newPrinter(out io.Writer) *printer {
	return &printer{out: out, exits: make(map[string]chan libcontainerd.EventInfo)}
}

// exitOf returns the channel that receives the init exit of container id.
// Call it before starting the container so no exit can be missed.
func (p *printer) exitOf(id string) chan libcontainerd.EventInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.exits[id]
	if !ok {
		ch = make(chan libcontainerd.EventInfo, 1)
		p.exits[id] = ch
	}
	return ch
}

// ProcessEvent prints the event; an init exit is also delivered to exitOf.
// libcontainerd calls it for one container at a time, never on its event
// stream goroutine, so it may block briefly without stalling other
// containers.
func (p *printer) ProcessEvent(_ context.Context, id string, ev libcontainerd.EventType, info libcontainerd.EventInfo) error {
	switch ev {
	case libcontainerd.EventExit:
		fmt.Fprintf(p.out, "%s: process %s (pid %d) exited with status %d at %s\n",
			id, info.ProcessID, info.Pid, info.ExitCode, info.ExitedAt.Format(time.RFC3339Nano))
		if info.OOMKilled {
			fmt.Fprintf(p.out, "%s: it was killed for running out of memory\n", id)
		}
		if info.ProcessID == id || info.ProcessID == "" {
			// Buffered for one exit: this example starts each
			// container once.
			select {
			case p.exitOf(id) <- info:
			default:
			}
		}
	default:
		fmt.Fprintf(p.out, "%s: %s (process %s, pid %d)\n", id, ev, info.ProcessID, info.Pid)
	}
	return nil
}

func main() {
	address := flag.String("address", "/run/containerd/containerd.sock", "containerd socket")
	namespace := flag.String("namespace", "custombackend", "containerd namespace")
	rootfs := flag.String("rootfs", "", "root filesystem directory (e.g. build/rootfs from scripts/setup.sh)")
	id := flag.String("id", "custombackend-demo", "container id")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		args = []string{"sh", "-c", "echo hello from the container; exit 3"}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, *address, *namespace, *rootfs, *id, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "custombackend:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// run creates the container, starts it, waits for its exit through the
// Backend and deletes it again.
func run(ctx context.Context, address, namespace, rootfs, id string, args []string) (code int, retErr error) {
	if rootfs == "" {
		return 0, errors.New("-rootfs is required")
	}
	rootfs, err := filepath.Abs(rootfs)
	if err != nil {
		return 0, err
	}
	p := newPrinter(os.Stdout)
	c, err := libcontainerd.New(ctx, address, namespace, p)
	if err != nil {
		return 0, err
	}
	defer c.Close()

	spec, err := oci.GenerateSpec(namespaces.WithNamespace(ctx, namespace), nil, &containers.Container{ID: id},
		oci.WithDefaultPathEnv, oci.WithProcessArgs(args...), oci.WithRootFSPath(rootfs), oci.WithRootFSReadonly())
	if err != nil {
		return 0, err
	}
	if err := c.Create(ctx, id, spec); err != nil {
		return 0, err
	}
	defer func() {
		// Clean up even when ctx was cancelled by a signal.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		// After an interrupted wait the task may still run: kill it. Both
		// calls fail harmlessly when the task has already exited.
		_ = c.SignalProcess(cctx, id, "", syscall.SIGKILL)
		_, _, _ = c.DeleteTask(cctx, id)
		if err := c.Delete(cctx, id); err != nil && retErr == nil {
			retErr = err
		}
	}()
	exited := p.exitOf(id)
	// The container's output goes to ours; io/attach owns the copies.
	stdio := libcontainerd.WithStdio(func(cfg cio.Config, pipes libcontainerd.Pipes) (cio.IO, error) {
		return attach.New(cfg, pipes.Stdin, pipes.Stdout, pipes.Stderr, attach.Streams{Stdout: os.Stdout, Stderr: os.Stderr}), nil
	})
	pid, err := c.Start(ctx, id, stdio)
	if err != nil {
		return 0, err
	}
	fmt.Printf("%s: started, pid %d\n", id, pid)
	select {
	case info := <-exited:
		return int(info.ExitCode), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
