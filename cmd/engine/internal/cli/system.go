package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/format"
	libcontainerdtypes "github.com/tendhq/tend/libcontainerd/types"
)

// ParseSince parses --since/--until: a duration before now ("10m", "1h30m"),
// RFC 3339 or unix seconds.
func ParseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("invalid time %q: durations are before now and must not be negative: %w", v, errdefs.ErrInvalidArgument)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return api.ParseUnixSeconds(v)
	}
	return time.Time{}, fmt.Errorf("invalid time %s: want a duration (10m), RFC 3339 or unix seconds: %w", api.Echo(v), errdefs.ErrInvalidArgument)
}

// EventsOptions are the inputs of Events.
type EventsOptions struct {
	Since, Until time.Time
	Filters      []string
	Format       string
	Stdout       io.Writer
}

// EventActor is the object of an event, as docker's.
type EventActor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// EventMessage is an event in docker's shape: what `events --format json`
// prints and what templates see ({{.Type}}, {{.Action}}, {{.Actor.ID}},
// {{.Actor.Attributes.name}}, {{.TimeNano}}, ...).
type EventMessage struct {
	Status   string     `json:"status,omitempty"`
	ID       string     `json:"id,omitempty"`
	From     string     `json:"from,omitempty"`
	Type     string     `json:"Type"`
	Action   string     `json:"Action"`
	Actor    EventActor `json:"Actor"`
	Scope    string     `json:"scope"`
	Time     int64      `json:"time"`
	TimeNano int64      `json:"timeNano"`
}

// NewEventMessage turns an engine event into docker's shape.
func NewEventMessage(e api.Event) EventMessage {
	attrs := e.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	m := EventMessage{
		Type: e.EventKind(), Action: e.Type, Actor: EventActor{ID: e.ContainerID, Attributes: attrs},
		Scope: "local", Time: e.Time.Unix(), TimeNano: e.Time.UnixNano(),
	}
	if m.Type == "container" {
		m.Status, m.ID, m.From = e.Type, e.ContainerID, attrs["image"]
	}
	return m
}

// FormatEvent renders an event as docker events does:
// "2026-01-02T03:04:05.000000000Z container die 1a2b... (exitCode=1, image=busybox, name=web)".
func FormatEvent(e api.Event) string {
	m := NewEventMessage(e)
	attrs := make([]string, 0, len(m.Actor.Attributes))
	for k, v := range m.Actor.Attributes {
		attrs = append(attrs, k+"="+v)
	}
	sort.Strings(attrs)
	line := fmt.Sprintf("%s %s %s %s", e.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00"), m.Type, m.Action, m.Actor.ID)
	if len(attrs) > 0 {
		line += " (" + strings.Join(attrs, ", ") + ")"
	}
	return line
}

// Events prints events as they happen (JSON lines with Format json, a Go
// template per event) until ctx ends or Until passes; a window in the past
// prints its events and ends.
func Events(ctx context.Context, c *client.Client, opts EventsOptions) error {
	var tmpl *format.Template
	if opts.Format != "" && opts.Format != "table" {
		var err error
		if tmpl, err = format.ParseTemplate(opts.Format, ""); err != nil {
			return &StatusError{Code: ExitEngineError, Err: err}
		}
	}
	if !opts.Until.IsZero() && !opts.Since.IsZero() && opts.Until.Before(opts.Since) {
		return &StatusError{Code: ExitEngineError, Err: fmt.Errorf("--until %s is before --since %s: %w", opts.Until.Format(time.RFC3339), opts.Since.Format(time.RFC3339), errdefs.ErrInvalidArgument)}
	}
	err := c.Events(ctx, opts.Since, opts.Until, opts.Filters, func(e api.Event) error {
		if tmpl != nil {
			return tmpl.Line(opts.Stdout, NewEventMessage(e))
		}
		_, err := fmt.Fprintln(opts.Stdout, FormatEvent(e))
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}

// StatsOptions are the inputs of Stats.
type StatsOptions struct {
	Refs     []string // none: every running container
	NoStream bool
	Format   string
	Interval time.Duration // between samples; default 1s
	Stdout   io.Writer
}

// StatsEntry is one row of stats, also its JSON form.
type StatsEntry struct {
	ID         string  `json:"ID"`
	Name       string  `json:"Name"`
	CPUPerc    float64 `json:"CPUPerc"`
	MemUsage   uint64  `json:"MemUsage"`
	MemLimit   uint64  `json:"MemLimit"`
	MemPerc    float64 `json:"MemPerc"`
	Pids       uint64  `json:"PIDs"`
	BlockRead  uint64  `json:"BlockRead"`
	BlockWrite uint64  `json:"BlockWrite"`
	NetRx      uint64  `json:"NetRx"`
	NetTx      uint64  `json:"NetTx"`
}

// StatsLine is a row of stats as docker's templates and `stats --format
// json` show it: {{.Container}}, {{.Name}}, {{.CPUPerc}}, {{.MemUsage}},
// {{.MemPerc}}, {{.NetIO}}, {{.BlockIO}}, {{.PIDs}}.
type StatsLine struct {
	BlockIO   string `json:"BlockIO"`
	CPUPerc   string `json:"CPUPerc"`
	Container string `json:"Container"`
	ID        string `json:"ID"`
	MemPerc   string `json:"MemPerc"`
	MemUsage  string `json:"MemUsage"`
	Name      string `json:"Name"`
	NetIO     string `json:"NetIO"`
	PIDs      string `json:"PIDs"`
}

// Docker renders the row in docker's shape.
func (e StatsEntry) Docker() StatsLine {
	return StatsLine{
		BlockIO:   format.HumanSizeWithPrecision(int64(e.BlockRead), 3) + " / " + format.HumanSizeWithPrecision(int64(e.BlockWrite), 3),
		CPUPerc:   format.Percent(e.CPUPerc),
		Container: e.ID, ID: e.ID, Name: e.Name,
		MemPerc:  format.Percent(e.MemPerc),
		MemUsage: format.BytesSize(e.MemUsage) + " / " + format.BytesSize(e.MemLimit),
		NetIO:    format.HumanSizeWithPrecision(int64(e.NetRx), 3) + " / " + format.HumanSizeWithPrecision(int64(e.NetTx), 3),
		PIDs:     strconv.FormatUint(e.Pids, 10),
	}
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeader = format.Header{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// hostMemory is the host's RAM, shown as the limit of unlimited containers.
func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// StatsRow computes a row from two samples of the same container.
func StatsRow(id, name string, prev, cur *libcontainerdtypes.Stats, hostMem uint64) StatsEntry {
	e := StatsEntry{ID: format.ShortID(id), Name: name, MemUsage: cur.Memory.Usage, MemLimit: cur.Memory.Limit,
		Pids: cur.Pids.Current, BlockRead: cur.Blkio.ReadBytes, BlockWrite: cur.Blkio.WriteBytes}
	// As docker's: the sum over the container's networks.
	for _, n := range cur.Networks {
		e.NetRx += n.RxBytes
		e.NetTx += n.TxBytes
	}
	// Page cache is reclaimable: docker subtracts it from the usage.
	if e.MemUsage > cur.Memory.Cache {
		e.MemUsage -= cur.Memory.Cache
	}
	if e.MemLimit == 0 || e.MemLimit >= 1<<62 || (hostMem > 0 && e.MemLimit > hostMem) {
		e.MemLimit = hostMem
	}
	if e.MemLimit > 0 {
		e.MemPerc = float64(e.MemUsage) / float64(e.MemLimit) * 100
	}
	if prev != nil {
		wall := cur.Read.Sub(prev.Read)
		if wall > 0 && cur.CPU.UsageNanos >= prev.CPU.UsageNanos {
			e.CPUPerc = float64(cur.CPU.UsageNanos-prev.CPU.UsageNanos) / float64(wall.Nanoseconds()) * 100
		}
	}
	return e
}

// Stats shows the resource use of containers: a table refreshed every
// Interval until ctx ends, or one table (NoStream) computed from two
// samples one Interval apart.
func Stats(ctx context.Context, c *client.Client, opts StatsOptions) error {
	tmpl, err := format.ParseTemplate(opts.Format, statsTable)
	if err != nil {
		return &StatusError{Code: ExitEngineError, Err: err}
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	hostMem := hostMemory()
	type target struct{ id, name string }
	resolve := func() ([]target, error) {
		var ts []target
		if len(opts.Refs) == 0 {
			cs, err := c.List(ctx, false, nil)
			if err != nil {
				return nil, err
			}
			for _, ct := range cs {
				ts = append(ts, target{ct.ID, ct.Name})
			}
			return ts, nil
		}
		for _, ref := range opts.Refs {
			ct, err := c.Inspect(ctx, ref)
			if err != nil {
				return nil, err
			}
			ts = append(ts, target{ct.ID, ct.Name})
		}
		return ts, nil
	}
	prev := map[string]*libcontainerdtypes.Stats{}
	sample := func(ts []target) ([]StatsEntry, error) {
		var rows []StatsEntry
		next := map[string]*libcontainerdtypes.Stats{}
		for _, t := range ts {
			s, err := c.Stats(ctx, t.id)
			if err != nil {
				if len(opts.Refs) == 0 && (errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) || errdefs.IsConflict(err)) {
					continue // it stopped between list and stats
				}
				return nil, err
			}
			next[t.id] = s
			rows = append(rows, StatsRow(t.id, t.name, prev[t.id], s, hostMem))
		}
		prev = next
		return rows, nil
	}
	// On a terminal the table is redrawn in place, as docker's.
	redraw := !opts.NoStream && writerIsTerminal(opts.Stdout)
	print := func(rows []StatsEntry) error {
		items := make([]any, 0, len(rows))
		for _, r := range rows {
			items = append(items, r.Docker())
		}
		if redraw && !tmpl.IsJSON() {
			fmt.Fprint(opts.Stdout, "\033[2J\033[H")
		}
		return tmpl.Render(opts.Stdout, statsHeader, items)
	}
	ts, err := resolve()
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if _, err := sample(ts); err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	ticker := time.NewTicker(opts.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if len(opts.Refs) == 0 && !opts.NoStream {
			if ts, err = resolve(); err != nil {
				return &StatusError{Code: 1, Err: err}
			}
		}
		rows, err := sample(ts)
		if err != nil {
			return &StatusError{Code: 1, Err: err}
		}
		if err := print(rows); err != nil {
			return err
		}
		if opts.NoStream {
			return nil
		}
	}
}

// ImageOptions are the inputs of the image commands.
type ImageOptions struct {
	Refs   []string
	Input  io.Reader // import
	Format string
	Quiet  bool
	Now    func() time.Time
	Stdout io.Writer
	Stderr io.Writer
}

// splitRef splits an image reference into repository and tag.
func splitRef(ref string) (string, string) {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "<none>"
}

// ImageImport imports an OCI or docker-archive tar and prints the images.
func ImageImport(ctx context.Context, c *client.Client, opts ImageOptions) error {
	imgs, err := c.ImportImage(ctx, opts.Input)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	for _, img := range imgs {
		fmt.Fprintf(opts.Stdout, "Loaded image: %s\n", img.Ref)
	}
	return nil
}

// ImageList lists images.
func ImageList(ctx context.Context, c *client.Client, opts ImageOptions) error {
	var tmpl *format.Template
	if opts.Format != "" && opts.Format != "json" {
		var err error
		if tmpl, err = format.ParseTemplate(opts.Format, imagesTable); err != nil {
			return &StatusError{Code: ExitEngineError, Err: err}
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	imgs, err := c.Images(ctx)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if opts.Format == "json" {
		enc := json.NewEncoder(opts.Stdout)
		for _, img := range imgs {
			if err := enc.Encode(img); err != nil {
				return err
			}
		}
		return nil
	}
	if opts.Quiet {
		for _, img := range imgs {
			fmt.Fprintln(opts.Stdout, img.Ref)
		}
		return nil
	}
	now := opts.Now()
	if tmpl != nil {
		items := make([]any, 0, len(imgs))
		for _, img := range imgs {
			items = append(items, NewImageLine(img, now))
		}
		if err := tmpl.Render(opts.Stdout, imagesHeader, items); err != nil {
			return &StatusError{Code: ExitEngineError, Err: err}
		}
		return nil
	}
	tw := tabwriter.NewWriter(opts.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	for _, img := range imgs {
		repo, tag := splitRef(img.Ref)
		id := strings.TrimPrefix(img.Digest, "sha256:")
		created := "N/A"
		if !img.Created.IsZero() {
			created = format.Ago(now, img.Created)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", repo, tag, format.ShortID(id), created, format.HumanSize(img.Size))
	}
	return tw.Flush()
}

// ImageLine is an image as docker's image templates show it:
// {{.Repository}}, {{.Tag}}, {{.ID}}, {{.Digest}}, {{.CreatedSince}},
// {{.CreatedAt}}, {{.Size}}.
type ImageLine struct {
	Containers   string `json:"Containers"`
	CreatedAt    string `json:"CreatedAt"`
	CreatedSince string `json:"CreatedSince"`
	Digest       string `json:"Digest"`
	ID           string `json:"ID"`
	Repository   string `json:"Repository"`
	Size         string `json:"Size"`
	Tag          string `json:"Tag"`
}

// NewImageLine renders an image for a template.
func NewImageLine(img api.Image, now time.Time) ImageLine {
	repo, tag := splitRef(img.Ref)
	l := ImageLine{Containers: "N/A", Digest: img.Digest, ID: format.ShortID(strings.TrimPrefix(img.Digest, "sha256:")),
		Repository: repo, Tag: tag, Size: format.HumanSize(img.Size), CreatedSince: "N/A"}
	if !img.Created.IsZero() {
		l.CreatedSince = format.Ago(now, img.Created)
		l.CreatedAt = img.Created.Format("2006-01-02 15:04:05 -0700 MST")
	}
	return l
}

const imagesTable = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

var imagesHeader = format.Header{
	"Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED", "Digest": "DIGEST",
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Size": "SIZE", "Tag": "TAG",
}

// ImageRemove removes images and prints each ref.
func ImageRemove(ctx context.Context, c *client.Client, opts ImageOptions) error {
	return forEach(opts.Refs, opts.Stderr, func(ref string) error {
		if err := c.RemoveImage(ctx, ref); err != nil {
			return err
		}
		fmt.Fprintf(opts.Stdout, "Untagged: %s\n", ref)
		return nil
	})
}

// InfoOptions are the inputs of Version and Info.
type InfoOptions struct {
	Format string
	Stdout io.Writer
}

// PrintVersion prints the client's and the daemon's versions; an
// unreachable daemon still shows the client and fails.
func PrintVersion(ctx context.Context, c *client.Client, opts InfoOptions) error {
	cl := api.VersionInfo{Version: api.EngineVersion, APIVersion: api.Version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if custom(opts.Format) {
		tmpl, err := format.ParseTemplate(opts.Format, "")
		if err != nil {
			return &StatusError{Code: ExitEngineError, Err: err}
		}
		v := VersionLine{Client: versionOf(cl)}
		sv, err := c.Version(ctx)
		if err == nil {
			srv := versionOf(sv)
			srv.ContainerdVersion = sv.ContainerdVersion
			v.Server = &srv
		}
		if terr := tmpl.Line(opts.Stdout, v); terr != nil {
			return &StatusError{Code: ExitEngineError, Err: terr}
		}
		if err != nil {
			return &StatusError{Code: 1, Err: err}
		}
		return nil
	}
	if err := checkFormat(opts.Format); err != nil {
		return err
	}
	sv, err := c.Version(ctx)
	if opts.Format == "json" {
		out := map[string]any{"Client": cl}
		if err == nil {
			out["Server"] = sv
		}
		if jerr := json.NewEncoder(opts.Stdout).Encode(out); jerr != nil {
			return jerr
		}
	} else {
		tw := tabwriter.NewWriter(opts.Stdout, 0, 8, 1, ' ', 0)
		fmt.Fprintf(tw, "Client:\n Version:\t%s\n API version:\t%s\n Go version:\t%s\n OS/Arch:\t%s/%s\n", cl.Version, cl.APIVersion, cl.GoVersion, cl.OS, cl.Arch)
		if err == nil {
			fmt.Fprintf(tw, "\nServer:\n Engine:\n  Version:\t%s\n  API version:\t%s\n  Go version:\t%s\n  OS/Arch:\t%s/%s\n containerd:\n  Version:\t%s\n",
				sv.Version, sv.APIVersion, sv.GoVersion, sv.OS, sv.Arch, sv.ContainerdVersion)
		}
		if ferr := tw.Flush(); ferr != nil {
			return ferr
		}
	}
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}

// PrintInfo prints a summary of the daemon's state.
func PrintInfo(ctx context.Context, c *client.Client, opts InfoOptions) error {
	var tmpl *format.Template
	if custom(opts.Format) {
		var err error
		if tmpl, err = format.ParseTemplate(opts.Format, ""); err != nil {
			return &StatusError{Code: ExitEngineError, Err: err}
		}
	} else if err := checkFormat(opts.Format); err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if tmpl != nil {
		if err := tmpl.Line(opts.Stdout, NewInfoLine(info)); err != nil {
			return &StatusError{Code: ExitEngineError, Err: err}
		}
		return nil
	}
	if opts.Format == "json" {
		return json.NewEncoder(opts.Stdout).Encode(info)
	}
	tw := tabwriter.NewWriter(opts.Stdout, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, "Containers:\t%d\n Running:\t%d\n Paused:\t%d\n Stopped:\t%d\nImages:\t%d\nServer Version:\t%s\ncontainerd Version:\t%s\nNamespace:\t%s\nEngine Root Dir:\t%s\nLive Restore Enabled:\t%t\nSocket:\t%s\n",
		info.Containers, info.Running, info.Paused, info.Stopped, info.Images, api.EngineVersion, info.ContainerdVersion, info.Namespace, info.Root, info.LiveRestore, c.Socket())
	return tw.Flush()
}

// custom reports whether a --format is a Go template rather than a named
// format.
func custom(f string) bool { return f != "" && f != "table" && f != "json" }

func checkFormat(f string) error {
	switch f {
	case "", "table", "json":
		return nil
	}
	return &StatusError{Code: ExitEngineError, Err: fmt.Errorf("invalid --format %q: want table or json: %w", f, errdefs.ErrInvalidArgument)}
}

// VersionPart is one side of `version` as docker's templates see it:
// {{.Client.Version}}, {{.Server.APIVersion}}, ...
type VersionPart struct {
	Version           string
	APIVersion        string
	GoVersion         string
	Os                string
	Arch              string
	ContainerdVersion string `json:",omitempty"`
}

// VersionLine is what `version --format` templates see: {{.Client}} and
// {{.Server}} (nil when the engine did not answer).
type VersionLine struct {
	Client VersionPart
	Server *VersionPart
}

func versionOf(v api.VersionInfo) VersionPart {
	return VersionPart{Version: v.Version, APIVersion: v.APIVersion, GoVersion: v.GoVersion, Os: v.OS, Arch: v.Arch}
}

// InfoLine is what `info --format` templates see, with docker's names:
// {{.Containers}}, {{.ContainersRunning}}, {{.ServerVersion}}, ...
type InfoLine struct {
	Containers         int
	ContainersRunning  int
	ContainersPaused   int
	ContainersStopped  int
	Images             int
	ServerVersion      string
	ContainerdVersion  string
	Namespace          string
	DockerRootDir      string
	LiveRestoreEnabled bool
}

// NewInfoLine renders Info with docker's names.
func NewInfoLine(i api.Info) InfoLine {
	return InfoLine{Containers: i.Containers, ContainersRunning: i.Running, ContainersPaused: i.Paused, ContainersStopped: i.Stopped,
		Images: i.Images, ServerVersion: api.EngineVersion, ContainerdVersion: i.ContainerdVersion, Namespace: i.Namespace,
		DockerRootDir: i.Root, LiveRestoreEnabled: i.LiveRestore}
}
