// Package format renders engine state the way docker and nerdctl users
// expect it: human durations and sizes, container status strings, truncated
// ids and commands, and parses human memory sizes. It is pure: every
// function takes the current time when it needs one.
package format

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/healthcheck"
)

// HumanDuration renders d as docker does ("Less than a second", "5 seconds",
// "About a minute", "3 hours", "2 weeks").
func HumanDuration(d time.Duration) string {
	if seconds := int(d.Seconds()); seconds < 1 {
		return "Less than a second"
	} else if seconds == 1 {
		return "1 second"
	} else if seconds < 60 {
		return fmt.Sprintf("%d seconds", seconds)
	} else if minutes := int(d.Minutes()); minutes == 1 {
		return "About a minute"
	} else if minutes < 60 {
		return fmt.Sprintf("%d minutes", minutes)
	} else if hours := int(d.Hours() + 0.5); hours == 1 {
		return "About an hour"
	} else if hours < 48 {
		return fmt.Sprintf("%d hours", hours)
	} else if hours < 24*7*2 {
		return fmt.Sprintf("%d days", hours/24)
	} else if hours < 24*30*2 {
		return fmt.Sprintf("%d weeks", hours/24/7)
	} else if hours < 24*365*2 {
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// Ago renders how long before now t was: "5 minutes ago".
func Ago(now, t time.Time) string {
	return HumanDuration(now.Sub(t)) + " ago"
}

var (
	decimalUnits = []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	binaryUnits  = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
)

func humanUnits(size float64, base float64, units []string, sep string) string {
	i := 0
	for size >= base && i < len(units)-1 {
		size /= base
		i++
	}
	return strconv.FormatFloat(size, 'g', 4, 64) + sep + units[i]
}

// HumanSize renders a size in decimal units as docker images does: "1.23MB".
func HumanSize(n int64) string {
	if n < 0 {
		return "-" + humanUnits(float64(-n), 1000, decimalUnits, "")
	}
	return humanUnits(float64(n), 1000, decimalUnits, "")
}

// BytesSize renders a size in binary units as docker stats does: "1.5MiB".
func BytesSize(n uint64) string {
	return humanUnits(float64(n), 1024, binaryUnits, "")
}

var memRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?$`) })

// ParseMemory parses a human memory size as docker's --memory does: a
// number with an optional unit b, k, m, g, t or p (binary multiples, any
// case, optional "b"/"ib" suffix): "16m", "1g", "512KiB", "1.5G", "1024".
func ParseMemory(s string) (int64, error) {
	m := memRE().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid memory size %q: want a number with an optional unit b, k, m, g, t (e.g. 16m, 1g): %w", s, errdefs.ErrInvalidArgument)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid memory size %q: %w", s, errdefs.ErrInvalidArgument)
	}
	mult := float64(1)
	switch strings.ToLower(m[2]) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	case "t":
		mult = 1 << 40
	case "p":
		mult = 1 << 50
	}
	b := v * mult
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid memory size %q: too large: %w", s, errdefs.ErrInvalidArgument)
	}
	if v > 0 && b < 1 {
		// It would become 0, which means no limit at all.
		return 0, fmt.Errorf("invalid memory size %q: less than one byte: %w", s, errdefs.ErrInvalidArgument)
	}
	return int64(b), nil
}

// ShortID returns the 12-character form of a container id.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Truncate shortens s to at most n runes, ending with "…" when cut.
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}

// Command renders a container's command as docker ps does: the words
// joined by spaces, a word with a space in single quotes ("sh -c 'exit 7'"),
// truncated to 20 characters with trunc, and quoted.
func Command(argv []string, trunc bool) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		if i > 0 && strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		words[i] = a
	}
	cmd := strings.Join(words, " ")
	if trunc {
		cmd = Truncate(cmd, 20)
	}
	return strconv.Quote(cmd)
}

// Image renders what a container runs from as docker ps does: the image as
// the user gave it, or its rootfs dir.
func Image(c *api.Container) string {
	if c.ImageName != "" {
		return c.ImageName
	}
	if c.Config.Image != "" {
		return c.Config.Image
	}
	return c.Config.Rootfs
}

// Labels renders labels as docker ps does: "k=v,k2=v2", sorted.
func Labels(l map[string]string) string {
	out := make([]string, 0, len(l))
	for k, v := range l {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// ContainerSize renders ps's SIZE column: "12B (virtual 4.26MB)"; empty
// when the size was not asked for.
func ContainerSize(rw, rootfs int64) string {
	if rw == 0 && rootfs == 0 {
		return ""
	}
	s := sizePrecision(rw, 3)
	if rootfs > 0 {
		s += " (virtual " + sizePrecision(rootfs, 3) + ")"
	}
	return s
}

// HumanSizeWithPrecision renders a size in decimal units with prec
// significant digits, as docker stats' NET I/O and BLOCK I/O do with 3:
// "1.31kB", "0B".
func HumanSizeWithPrecision(n int64, prec int) string { return sizePrecision(n, prec) }

// sizePrecision is docker's units.HumanSizeWithPrecision.
func sizePrecision(n int64, prec int) string {
	size := float64(n)
	i := 0
	for size >= 1000 && i < len(decimalUnits)-1 {
		size /= 1000
		i++
	}
	return strconv.FormatFloat(size, 'g', prec, 64) + decimalUnits[i]
}

// healthSuffix is docker's health annotation of a running container.
func healthSuffix(h *healthcheck.State, cfg *healthcheck.Config) string {
	if cfg == nil || len(cfg.Test) == 0 || cfg.Test[0] == healthcheck.TestNone {
		return ""
	}
	status := healthcheck.StatusStarting
	if h != nil && h.Status != "" {
		status = h.Status
	}
	if status == healthcheck.StatusStarting {
		return " (health: starting)"
	}
	return " (" + status + ")"
}

// Status renders a container's STATUS column as docker ps does:
// "Up 3 minutes (healthy)", "Up 2 seconds (health: starting)",
// "Restarting (1) 2 seconds ago", "Exited (137) 5 seconds ago", "Created",
// "Up About a minute (Paused)".
func Status(c *api.Container, now time.Time) string {
	switch c.State {
	case api.StateRunning:
		return "Up " + HumanDuration(now.Sub(c.StartedAt)) + healthSuffix(c.Health, c.Config.Health)
	case api.StatePaused:
		return "Up " + HumanDuration(now.Sub(c.StartedAt)) + " (Paused)"
	case api.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s", c.ExitCode, Ago(now, c.FinishedAt))
	case api.StateRemoving:
		return "Removal In Progress"
	case api.StateDead:
		return "Dead"
	case api.StateCreated:
		return "Created"
	case api.StateExited:
		if c.StartedAt.IsZero() {
			return "Created"
		}
		if c.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", c.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s", c.ExitCode, Ago(now, c.FinishedAt))
	}
	return string(c.State)
}

// LogAttrs renders a log line's extra attributes as docker's logs
// --details does: "k=v" pairs sorted by key, keys and values query-escaped,
// joined by commas; "" when there are none.
func LogAttrs(attrs map[string]string) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(attrs[k]))
	}
	return b.String()
}

// Percent renders a percentage with two decimals: "12.34%".
func Percent(p float64) string {
	if math.IsNaN(p) || math.IsInf(p, 0) {
		return "--"
	}
	return strconv.FormatFloat(p, 'f', 2, 64) + "%"
}
