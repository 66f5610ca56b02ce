package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/containerd/errdefs"
	"github.com/docker/cli/templates"
)

// Template is a parsed --format value, read as the docker CLI reads it:
//
//   - "" or "table": the command's default table;
//   - "json": each item as one line of JSON;
//   - "table TEMPLATE": a table whose header comes from the same template
//     run over the column names, aligned like docker's;
//   - anything else: a Go text/template run for each item, one line each.
//
// Templates have docker's functions (json, join, split, upper, lower, title,
// truncate, pad, and text/template's own such as println), from the docker
// CLI's own templates package.
type Template struct {
	json  bool
	table bool
	tmpl  *template.Template
	src   string
}

// ParseTemplate parses a --format value; def is the command's default
// table ("table {{.ID}}\t{{.Name}}"). An unparsable template is an
// errdefs.ErrInvalidArgument.
func ParseTemplate(format, def string) (*Template, error) {
	switch format {
	case "", "table":
		format = def
	case "json":
		return &Template{json: true}, nil
	}
	t := &Template{}
	src := format
	if after, ok := strings.CutPrefix(src, "table"); ok {
		t.table = true
		src = after
	}
	src = strings.Trim(src, " ")
	src = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(src)
	tmpl, err := templates.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("invalid --format %q: template parsing error: %v: %w", format, err, errdefs.ErrInvalidArgument)
	}
	t.tmpl, t.src = tmpl, src
	return t, nil
}

// IsJSON reports whether the format is plain "json".
func (t *Template) IsJSON() bool { return t.json }

// IsTable reports whether the output is a table with a header.
func (t *Template) IsTable() bool { return t.table }

// Header names the columns of a table: the field names of the items mapped
// to their headings ("Names" -> "NAMES"). A field missing from it is shown
// with an empty heading.
type Header map[string]string

// Label is the heading of {{.Label "name"}}, as docker's.
func (h Header) Label(name string) string { return name }

// Render writes items: a table (header first) or one line per item.
func (t *Template) Render(w io.Writer, header Header, items []any) error {
	if t.json {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, it := range items {
			if err := enc.Encode(it); err != nil {
				return err
			}
		}
		return nil
	}
	var buf bytes.Buffer
	for _, it := range items {
		if err := t.tmpl.Execute(&buf, it); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		buf.WriteByte('\n')
	}
	if !t.table {
		_, err := buf.WriteTo(w)
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	if err := t.header(tw, header); err != nil {
		return err
	}
	if _, err := buf.WriteTo(tw); err != nil {
		return err
	}
	return tw.Flush()
}

func (t *Template) header(w io.Writer, header Header) error {
	h, err := template.New("").Funcs(templates.HeaderFunctions).Option("missingkey=zero").Parse(t.src)
	if err != nil {
		return err
	}
	if header == nil {
		header = Header{}
	}
	var buf bytes.Buffer
	_ = h.Execute(&buf, header) // a column docker cannot name stays empty
	buf.WriteByte('\n')
	_, err = buf.WriteTo(w)
	return err
}

// Line renders one item of a stream (events, stats without a table):
// JSON or the template, and a newline.
func (t *Template) Line(w io.Writer, item any) error {
	s, err := t.Execute(item)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, s+"\n")
	return err
}

// Execute runs the template once on v and returns the text (no newline):
// for --format on a single object such as inspect or info.
func (t *Template) Execute(v any) (string, error) {
	if t.json {
		b, err := json.Marshal(v)
		return string(b), err
	}
	var buf bytes.Buffer
	if err := t.tmpl.Execute(&buf, v); err != nil {
		return "", fmt.Errorf("template parsing error: %w", err)
	}
	return buf.String(), nil
}
