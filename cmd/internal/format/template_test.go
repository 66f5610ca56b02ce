package format

import (
	"bytes"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

type row struct {
	ID, Names, Status string
	Labels            map[string]string
}

func (r row) Label(k string) string { return r.Labels[k] }

func TestTemplate(t *testing.T) {
	items := []any{
		row{ID: "abc", Names: "web", Status: "Up 2 seconds", Labels: map[string]string{"app": "web"}},
		row{ID: "def", Names: "db", Status: "Exited (3) 1 second ago"},
	}
	header := Header{"ID": "CONTAINER ID", "Names": "NAMES", "Status": "STATUS"}
	for _, tc := range []struct {
		format, want string
	}{
		{"", "CONTAINER ID   NAMES\nabc            web\ndef            db\n"},
		{"table", "CONTAINER ID   NAMES\nabc            web\ndef            db\n"},
		{"{{.Names}}", "web\ndb\n"},
		{`{{.Names}}\t{{.Status}}`, "web\tUp 2 seconds\ndb\tExited (3) 1 second ago\n"},
		{"table {{.Names}}\t{{upper .Status}}", "NAMES     STATUS\nweb       UP 2 SECONDS\ndb        EXITED (3) 1 SECOND AGO\n"},
		{`{{json .Names}} {{.Label "app"}}`, "\"web\" web\n\"db\" \n"},
		{`{{join (split .Status " ") "_"}}|{{lower .Names}}|{{title .Names}}|{{truncate .Status 2}}|{{pad .Names 1 1}}|`, "Up_2_seconds|web|Web|Up| web |\nExited_(3)_1_second_ago|db|Db|Ex| db |\n"},
		{"json", "{\"ID\":\"abc\",\"Names\":\"web\",\"Status\":\"Up 2 seconds\",\"Labels\":{\"app\":\"web\"}}\n{\"ID\":\"def\",\"Names\":\"db\",\"Status\":\"Exited (3) 1 second ago\",\"Labels\":null}\n"},
	} {
		tmpl, err := ParseTemplate(tc.format, "table {{.ID}}\t{{.Names}}")
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tc.format, err)
		}
		var buf bytes.Buffer
		if err := tmpl.Render(&buf, header, items); err != nil {
			t.Fatalf("Render(%q): %v", tc.format, err)
		}
		if buf.String() != tc.want {
			t.Errorf("format %q:\n%q\nwant\n%q", tc.format, buf.String(), tc.want)
		}
	}
	if _, err := ParseTemplate("{{.Names", ""); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "template parsing error") {
		t.Errorf("bad template: %v", err)
	}
	tmpl, _ := ParseTemplate("{{.Nope}}", "")
	if err := tmpl.Render(&bytes.Buffer{}, nil, items); err == nil {
		t.Error("a template naming a missing field rendered")
	}
}
