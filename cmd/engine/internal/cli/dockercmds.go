package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/format"
	"github.com/tendhq/tend/io/archive"
)

// Rename renames a container.
func Rename(ctx context.Context, c *client.Client, ref, name string) error {
	if err := c.Rename(ctx, ref, name); err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}

// UpdateOptions are the inputs of Update.
type UpdateOptions struct {
	Refs   []string
	Update api.UpdateOptions
	Stdout io.Writer
	Stderr io.Writer
}

// Update changes containers' resources and restart policy and prints each
// ref, as docker update.
func Update(ctx context.Context, c *client.Client, opts UpdateOptions) error {
	return forEach(opts.Refs, opts.Stderr, func(ref string) error {
		if err := c.Update(ctx, ref, opts.Update); err != nil {
			return err
		}
		fmt.Fprintln(opts.Stdout, ref)
		return nil
	})
}

// PruneOptions are the inputs of ContainerPrune and SystemPrune.
type PruneOptions struct {
	Force   bool
	Filters []string
	Streams
}

func confirm(s Streams, question string) bool {
	fmt.Fprintf(s.Stdout, "%s\nAre you sure you want to continue? [y/N] ", question)
	var answer string
	_, _ = fmt.Fscanln(s.Stdin, &answer)
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}

// ContainerPrune removes the stopped containers, as docker container prune.
func ContainerPrune(ctx context.Context, c *client.Client, opts PruneOptions) error {
	if !opts.Force && !confirm(opts.Streams, "WARNING! This will remove all stopped containers.") {
		return nil
	}
	rep, err := c.PruneContainers(ctx, opts.Filters)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if len(rep.ContainersDeleted) > 0 {
		fmt.Fprintln(opts.Stdout, "Deleted Containers:")
		for _, id := range rep.ContainersDeleted {
			fmt.Fprintln(opts.Stdout, id)
		}
		fmt.Fprintln(opts.Stdout)
	}
	fmt.Fprintf(opts.Stdout, "Total reclaimed space: %s\n", format.HumanSize(int64(rep.SpaceReclaimed)))
	return nil
}

// SystemPrune removes the stopped containers (tend has no build cache, and
// networks and images are pruned by their own commands), as the container
// part of docker system prune.
func SystemPrune(ctx context.Context, c *client.Client, opts PruneOptions) error {
	if !opts.Force && !confirm(opts.Streams, "WARNING! This will remove:\n  - all stopped containers") {
		return nil
	}
	opts.Force = true
	return ContainerPrune(ctx, c, opts)
}

// DiskUsageLine is a row of system df, as docker's: {{.Type}},
// {{.TotalCount}}, {{.Active}}, {{.Size}}, {{.Reclaimable}}.
type DiskUsageLine struct {
	Type        string `json:"Type"`
	TotalCount  string `json:"TotalCount"`
	Active      string `json:"Active"`
	Size        string `json:"Size"`
	Reclaimable string `json:"Reclaimable"`
}

// SystemDfOptions are the inputs of SystemDf.
type SystemDfOptions struct {
	Format string
	Stdout io.Writer
}

// SystemDf shows the disk use of images and containers, as docker system df.
func SystemDf(ctx context.Context, c *client.Client, opts SystemDfOptions) error {
	tmpl, err := format.ParseTemplate(opts.Format, "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}")
	if err != nil {
		return &StatusError{Code: ExitEngineError, Err: err}
	}
	du, err := c.DiskUsage(ctx)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	var imgSize, imgFree int64
	imgActive := 0
	for _, img := range du.Images {
		imgSize += img.Size
		if img.Containers > 0 {
			imgActive++
		} else {
			imgFree += img.Size
		}
	}
	var ctrSize, ctrFree int64
	ctrActive := 0
	for _, ct := range du.Containers {
		ctrSize += ct.SizeRw
		if ct.State == api.StateRunning || ct.State == api.StatePaused || ct.State == api.StateRestarting {
			ctrActive++
		} else {
			ctrFree += ct.SizeRw
		}
	}
	reclaim := func(free, total int64) string {
		s := format.HumanSize(free)
		if total > 0 {
			s += fmt.Sprintf(" (%d%%)", free*100/total)
		}
		return s
	}
	rows := []any{
		DiskUsageLine{Type: "Images", TotalCount: fmt.Sprint(len(du.Images)), Active: fmt.Sprint(imgActive), Size: format.HumanSize(imgSize), Reclaimable: reclaim(imgFree, imgSize)},
		DiskUsageLine{Type: "Containers", TotalCount: fmt.Sprint(len(du.Containers)), Active: fmt.Sprint(ctrActive), Size: format.HumanSize(ctrSize), Reclaimable: reclaim(ctrFree, ctrSize)},
	}
	header := format.Header{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
	if err := tmpl.Render(opts.Stdout, header, rows); err != nil {
		return &StatusError{Code: ExitEngineError, Err: err}
	}
	return nil
}

// Diff prints what a container changed: "A /tmp/x", "C /etc", "D /bin/y".
func Diff(ctx context.Context, c *client.Client, ref string, stdout io.Writer) error {
	cs, err := c.Changes(ctx, ref)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	for _, ch := range cs {
		kind := "C"
		switch ch.Kind {
		case 1:
			kind = "A"
		case 2:
			kind = "D"
		}
		fmt.Fprintf(stdout, "%s %s\n", kind, ch.Path)
	}
	return nil
}

// Export writes a container's filesystem as a tar to out (a file, or
// stdout when it is not a terminal).
func Export(ctx context.Context, c *client.Client, ref, output string, s Streams) error {
	var w io.Writer = s.Stdout
	if output != "" {
		f, err := os.OpenFile(output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return &StatusError{Code: 1, Err: err}
		}
		defer f.Close()
		w = f
	} else if writerIsTerminal(s.Stdout) {
		return &StatusError{Code: 1, Err: errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")}
	}
	rc, err := c.Export(ctx, ref)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return &StatusError{Code: 1, Err: fmt.Errorf("export %s: %w", ref, err)}
	}
	return nil
}

// SplitCpArg splits a cp argument into container and path: "web:/etc" is
// ("web", "/etc"); a local path has no container. As docker, a local path
// with a colon must be written with a slash before it (./a:b).
func SplitCpArg(arg string) (string, string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || ctr == "" {
		return "", arg
	}
	return ctr, p
}

// Cp copies between a container and the local filesystem, as docker cp:
// SRC_PATH "-" reads a tar from stdin, DEST_PATH "-" writes a tar to
// stdout.
func Cp(ctx context.Context, c *client.Client, src, dst string, s Streams) error {
	sc, sp := SplitCpArg(src)
	dc, dp := SplitCpArg(dst)
	switch {
	// docker's own words and exit code, before the engine is asked.
	case sc != "" && dc != "":
		return &StatusError{Code: 1, Err: errors.New("copying between containers is not supported")}
	case sc == "" && dc == "":
		return &StatusError{Code: 1, Err: errors.New("must specify at least one container source")}
	case sc != "":
		return cpOut(ctx, c, sc, sp, dst, s)
	}
	return cpIn(ctx, c, src, dc, dp, s)
}

func cpOut(ctx context.Context, c *client.Client, ctr, p, dst string, s Streams) error {
	if !path.IsAbs(p) {
		p = "/" + p
	}
	rc, err := c.GetArchive(ctx, ctr, p)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	defer rc.Close()
	if dst == "-" {
		if _, err := io.Copy(s.Stdout, rc); err != nil {
			return &StatusError{Code: 1, Err: err}
		}
		return nil
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	dir, rename := abs, ""
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		// A new name (or a file to replace): the copy takes it.
		dir, rename = filepath.Dir(abs), filepath.Base(abs)
	}
	if err := archive.ExtractTar(rc, "/", dir, rename); err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}

func cpIn(ctx context.Context, c *client.Client, src, ctr, p string, s Streams) error {
	if !path.IsAbs(p) {
		p = "/" + p
	}
	if src == "-" {
		if err := c.PutArchive(ctx, ctr, p, s.Stdin); err != nil {
			return &StatusError{Code: 1, Err: err}
		}
		return nil
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if _, err := os.Lstat(abs); err != nil {
		return &StatusError{Code: 1, Err: fmt.Errorf("could not find the file %s in the local filesystem: %w", src, err)}
	}
	send := func(dir, name string) error {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(archive.WriteTar(ctx, pw, abs, name)) }()
		defer pr.Close()
		return c.PutArchive(ctx, ctr, dir, pr)
	}
	// Into the directory p; when p is not one, as the new name p.
	err = send(p, filepath.Base(abs))
	if errdefs.IsNotFound(err) && path.Dir(p) != p {
		err = send(path.Dir(p), path.Base(p))
	}
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}
