package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummarise(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		want  counts
		fails int
	}{
		{"mixed", `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Test":"TestA/sub"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"fail","Package":"p","Test":"TestC"}
{"Action":"fail","Package":"p"}
{"Action":"pass","Package":"q"}
`, counts{2, 1, 1}, 1},
		{"build failure", "# p\n./x.go:1: syntax error\n" + `{"Action":"fail","Package":"p"}` + "\n", counts{0, 1, 0}, 1},
		{"empty", "", counts{0, 1, 0}, 1},
		{"timeout", `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 10m0s\n"}
{"Action":"fail","Package":"p"}
`, counts{1, 1, 0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c, failures, err := summarise(strings.NewReader(tc.in), &out, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if c != tc.want || len(failures) != tc.fails {
				t.Fatalf("got %+v %v, want %+v and %d failures", c, failures, tc.want, tc.fails)
			}
		})
	}
}

func TestBriefShowsOnlyFailures(t *testing.T) {
	in := `{"Action":"output","Package":"p","Test":"TestA","Output":"noise of A\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestB","Output":"why B failed\n"}
{"Action":"fail","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestC","Output":"C hung\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\n"}
{"Action":"fail","Package":"p"}
`
	var full, brief bytes.Buffer
	if _, _, err := summarise(strings.NewReader(in), &full, &brief); err != nil {
		t.Fatal(err)
	}
	b := brief.String()
	if strings.Contains(b, "noise of A") || !strings.Contains(b, "why B failed") || !strings.Contains(b, "C hung") || !strings.Contains(b, "FAIL\tp") {
		t.Fatalf("brief output %q", b)
	}
	if !strings.Contains(full.String(), "noise of A") {
		t.Fatalf("full output %q", full.String())
	}
}

func TestRunCounts(t *testing.T) {
	dir := t.TempDir()
	cp := filepath.Join(dir, "counts")
	in := `{"Action":"pass","Package":"p","Test":"TestA"}` + "\n"
	for range 2 {
		if err := run(strings.NewReader(in), &bytes.Buffer{}, filepath.Join(dir, "log"), cp, true); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(cp)
	if strings.TrimSpace(string(b)) != "2 0 0" {
		t.Fatalf("counts %q", b)
	}
}
