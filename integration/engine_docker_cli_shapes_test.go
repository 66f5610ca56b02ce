package integration

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// everydayCommands are the commands `engine --help` must list
// (docker's everyday commands), each with examples in its own --help.
var everydayCommands = []string{
	"attach", "completion", "container", "cp", "create", "diff", "events", "exec", "export", "image",
	"info", "inspect", "kill", "logs", "pause", "port", "ps", "rename", "restart", "rm", "run",
	"start", "stats", "stop", "system", "top", "unpause", "update", "version", "wait",
}

// TestEngineDockerCLIShapes checks docker's output shapes through the real
// binary against a real daemon: docker's status strings, typed image and
// quoted command in ps, event attributes, template functions, diff's
// changed parents, logs --details with --log-opt, stats' NET I/O, cp
// between containers refused as docker does, and the command list with
// examples in every --help.
func TestEngineDockerCLIShapes(t *testing.T) {
	root, err := os.MkdirTemp(testEnv.Root, "dshape-")
	if err != nil {
		t.Fatal(err)
	}
	d := startEngine(t, root, testEnv.Namespace+"-dshape")
	t.Cleanup(func() { cleanupEngine(t, d) })
	d.must(t, "image", "import", engineImage(t))

	// What the user types is what ps and events show: "busybox".
	d.must(t, "run", "-d", "--name", "sup", "--label", "app=web", "--log-opt", "labels=app", "--log-opt", "env=MODE",
		"-e", "MODE=a b", "--health-cmd", "true", "--health-interval", "1s", "busybox", "sh", "-c", "echo hello; exec sleep 100000")
	if _, _, code := d.run(t, nil, "run", "--name", "sexit", "busybox", "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("run exit 7: %d", code)
	}
	d.must(t, "create", "--name", "screated", "busybox", "true")
	d.must(t, "run", "-d", "--name", "spaused", "busybox", "sleep", "100000")
	d.must(t, "pause", "spaused")
	d.must(t, "run", "-d", "--name", "sloop", "--restart", "always", "busybox", "sh", "-c", "exit 1")

	status := func(name string) string {
		return strings.TrimSuffix(d.must(t, "ps", "-a", "--filter", "name=^"+name+"$", "--format", "{{.Status}}"), "\n")
	}

	t.Run("PsStatusStrings", func(t *testing.T) {
		for name, re := range map[string]string{
			"sexit":    `^Exited \(7\) (Less than a second|\d+ seconds?|About a minute|\d+ minutes) ago$`,
			"screated": `^Created$`,
			"spaused":  `^Up (Less than a second|\d+ seconds?|About a minute|\d+ minutes) \(Paused\)$`,
			"sup":      `^Up (Less than a second|\d+ seconds?|About a minute|\d+ minutes)( \(health: starting\)| \(healthy\))$`,
		} {
			if got := status(name); !regexp.MustCompile(re).MatchString(got) {
				t.Errorf("status of %s: %q, want %s", name, got, re)
			}
		}
		enginePoll(t, 30e9, "sup healthy", func() bool {
			return regexp.MustCompile(`^Up .* \(healthy\)$`).MatchString(status("sup"))
		})
		enginePoll(t, 30e9, "sloop restarting", func() bool {
			return regexp.MustCompile(`^Restarting \(1\) (Less than a second|\d+ seconds?) ago$`).MatchString(status("sloop"))
		})
	})

	t.Run("PsImageAndCommand", func(t *testing.T) {
		out := d.must(t, "ps", "-a", "--filter", "name=sexit")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 2 || !regexp.MustCompile(`^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$`).MatchString(lines[0]) {
			t.Fatalf("ps table: %q", out)
		}
		if !regexp.MustCompile(`^[0-9a-f]{12}\s+busybox\s+"sh -c 'exit 7'"\s+.* ago\s+Exited \(7\) .* ago\s+sexit$`).MatchString(lines[1]) {
			t.Errorf("ps row: %q", lines[1])
		}
		// Longer than 20 characters: cut with docker's ellipsis, or whole with --no-trunc.
		if out := d.must(t, "ps", "--filter", "name=sup", "--format", "{{.Command}}"); out != "\"sh -c 'echo hello; …\"\n" {
			t.Errorf("ps truncated command: %q", out)
		}
		if out := d.must(t, "ps", "--no-trunc", "--filter", "name=sup", "--format", "{{.Image}} {{.Command}}"); out != "busybox \"sh -c 'echo hello; exec sleep 100000'\"\n" {
			t.Errorf("ps --no-trunc command: %q", out)
		}
	})

	t.Run("TemplateFunctions", func(t *testing.T) {
		out := d.must(t, "ps", "-a", "--filter", "name=sexit", "--format",
			`{{json .Names}}|{{upper .Names}}|{{lower "ABC"}}|{{truncate .Names 3}}|{{pad .Names 1 2}}|{{join (split "a,b,c" ",") "+"}}|{{title "web"}}`)
		if out != `"sexit"|SEXIT|abc|sex| sexit  |a+b+c|Web`+"\n" {
			t.Errorf("template functions: %q", out)
		}
		out = d.must(t, "ps", "-a", "--filter", "name=sexit", "--format", "table {{.Names}}\t{{upper .Image}}")
		if !regexp.MustCompile(`^NAMES\s+IMAGE\nsexit\s+BUSYBOX\n$`).MatchString(out) {
			t.Errorf("table directive: %q", out)
		}
		out = d.must(t, "inspect", "-f", `{{json .State.ExitCode}} {{.Name | upper}} {{join .Config.Cmd " "}}`, "sexit")
		if out != "7 /SEXIT sh -c exit 7\n" {
			t.Errorf("inspect template functions: %q", out)
		}
	})

	t.Run("EventAttributes", func(t *testing.T) {
		out := d.must(t, "events", "--since", "10m", "--until", "0s", "--filter", "container=sexit", "--filter", "event=die", "--format", "{{json .Actor.Attributes}}")
		var attrs map[string]string
		if err := json.Unmarshal([]byte(out), &attrs); err != nil {
			t.Fatalf("die attributes %q: %v", out, err)
		}
		if attrs["exitCode"] != "7" || attrs["image"] != "busybox" || attrs["name"] != "sexit" {
			t.Errorf("die attributes: %v", attrs)
		}
		// The default line is docker's: time type action id (k=v, ...),
		// sorted (tend adds oom_killed and reason to docker's).
		out = d.must(t, "events", "--since", "10m", "--until", "0s", "--filter", "container=sexit", "--filter", "event=die")
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container die [0-9a-f]{64} \(exitCode=7, image=busybox, name=sexit(, [a-z_]+=[^,]*)*\)\n$`).MatchString(out) {
			t.Errorf("events line: %q", out)
		}
	})

	t.Run("DiffChangedParents", func(t *testing.T) {
		d.must(t, "exec", "sup", "sh", "-c", "echo x > /etc/foo; mkdir -p /var/a/b; echo y > /var/a/b/f; rm /bin/true")
		out := d.must(t, "diff", "sup")
		for _, want := range []string{"C /etc\nA /etc/foo\n", "C /var\nA /var/a\nA /var/a/b\nA /var/a/b/f\n", "C /bin\nD /bin/true\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("diff lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "C /\n") {
			t.Errorf("diff lists the root:\n%s", out)
		}
	})

	t.Run("LogsDetails", func(t *testing.T) {
		if out := d.must(t, "logs", "--details", "sup"); out != "MODE=a+b,app=web hello\n" {
			t.Errorf("logs --details with --log-opt: %q", out)
		}
		// No attributes: docker still puts the space before the line.
		if out := d.must(t, "logs", "--details", "sloop"); out != "" {
			t.Errorf("logs --details of a silent container: %q", out)
		}
		d.must(t, "run", "--name", "snoattr", "busybox", "echo", "plain")
		if out := d.must(t, "logs", "--details", "snoattr"); out != " plain\n" {
			t.Errorf("logs --details without attributes: %q", out)
		}
		if out := d.must(t, "logs", "snoattr"); out != "plain\n" {
			t.Errorf("logs: %q", out)
		}
		d.expectFail(t, 125, "unknown log opt 'max-buffer'", "run", "--log-opt", "max-buffer=1", "busybox", "true")
		d.expectFail(t, 125, "invalid --log-opt", "run", "--log-opt", "labels", "busybox", "true")
	})

	t.Run("StatsNetIO", func(t *testing.T) {
		var rec struct {
			Network *struct {
				Attachment *struct {
					Gateway string `json:"gateway"`
				} `json:"attachment"`
			} `json:"network"`
		}
		var recs []json.RawMessage
		if err := json.Unmarshal([]byte(d.must(t, "inspect", "--raw", "sup")), &recs); err != nil || len(recs) != 1 {
			t.Fatalf("inspect --raw: %v", err)
		}
		if err := json.Unmarshal(recs[0], &rec); err != nil || rec.Network == nil || rec.Network.Attachment == nil {
			t.Fatalf("no network attachment in %s (%v)", recs[0], err)
		}
		// Traffic out of the container's namespace: a TCP connect to the
		// bridge's gateway (refused or not, packets go both ways).
		_, _, _ = d.run(t, nil, "exec", "sup", "wget", "-q", "-T", "2", "-O", "/dev/null", "http://"+rec.Network.Attachment.Gateway+":9/")
		out := d.must(t, "stats", "--no-stream", "--format", "{{.NetIO}}|{{.BlockIO}}", "sup")
		m := regexp.MustCompile(`^(\d+(?:\.\d+)?[kMG]?B) / (\d+(?:\.\d+)?[kMG]?B)\|\S+ / \S+\n$`).FindStringSubmatch(out)
		if m == nil || m[2] == "0B" {
			t.Errorf("stats NET I/O: %q, want rx / tx with bytes sent", out)
		}
		out = d.must(t, "stats", "--no-stream", "sup")
		if !regexp.MustCompile(`^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS\n[0-9a-f]{12}\s+sup\s+`).MatchString(out) || strings.Contains(out, "--") {
			t.Errorf("stats table: %q", out)
		}
		// The host's namespace has no counters of the container's own.
		d.must(t, "run", "-d", "--name", "shost", "--network", "host", "busybox", "sleep", "100000")
		if out := d.must(t, "stats", "--no-stream", "--format", "{{.NetIO}}", "shost"); out != "0B / 0B\n" {
			t.Errorf("stats NET I/O of --network host: %q", out)
		}
	})

	t.Run("CpBetweenContainers", func(t *testing.T) {
		d.expectFail(t, 1, "copying between containers is not supported", "cp", "sup:/etc/hostname", "sexit:/tmp/")
		d.expectFail(t, 1, "must specify at least one container source", "cp", "./a", "./b")
	})

	t.Run("HelpListsCommandsWithExamples", func(t *testing.T) {
		commands := func(help string) []string {
			_, list, ok := strings.Cut(help, "\nAvailable Commands:\n")
			if !ok {
				return nil
			}
			list, _, _ = strings.Cut(list, "\n\n")
			var out []string
			for _, m := range regexp.MustCompile(`(?m)^  ([a-z]+)\s`).FindAllStringSubmatch(list, -1) {
				out = append(out, m[1])
			}
			return out
		}
		listed := map[string]bool{}
		for _, c := range commands(d.must(t, "--help")) {
			listed[c] = true
		}
		for _, c := range everydayCommands {
			if !listed[c] {
				t.Errorf("engine --help does not list %s", c)
			}
		}
		var walk func(path []string)
		walk = func(path []string) {
			out := d.must(t, append(path, "--help")...)
			if !strings.Contains(out, "\nExamples:\n  engine ") && !strings.Contains(out, "\nExamples:\n  source ") {
				t.Errorf("engine %s --help has no examples", strings.Join(path, " "))
			}
			for _, c := range commands(out) {
				walk(append(append([]string{}, path...), c))
			}
		}
		for c := range listed {
			walk([]string{c})
		}
	})
}
