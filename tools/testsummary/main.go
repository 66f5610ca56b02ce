// Command testsummary reads `go test -json` on stdin, writes the tests'
// output (what -v prints) to stdout and, with -log, to a file, and counts
// passed, failed and skipped tests (subtests included). A package that
// fails without a failing test (build error, panic, timeout) counts as one
// failure. With -counts it adds its counts to that file ("P F S"), so
// several runs sum up; it prints the names of failures at the end.
//
// It exits 1 if anything failed or the input was not go test -json.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type counts struct{ passed, failed, skipped int }

func main() {
	logPath := flag.String("log", "", "also write the test output to this file")
	countsPath := flag.String("counts", "", "add the counts to this file (\"passed failed skipped\")")
	quiet := flag.Bool("quiet", false, "on stdout, show only the output of failed tests and package results (the -log file gets everything)")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *logPath, *countsPath, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, stdout io.Writer, logPath, countsPath string, quiet bool) error {
	out, full := stdout, io.Discard
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		out, full = io.MultiWriter(stdout, f), f
	}
	var c counts
	var failures []string
	var err error
	if quiet {
		c, failures, err = summarise(in, full, stdout)
		out = io.MultiWriter(stdout, full)
	} else {
		c, failures, err = summarise(in, out, nil)
	}
	if err != nil {
		return err
	}
	if countsPath != "" {
		var prev counts
		if b, err := os.ReadFile(countsPath); err == nil {
			fmt.Sscan(string(b), &prev.passed, &prev.failed, &prev.skipped)
		}
		sum := fmt.Sprintf("%d %d %d\n", prev.passed+c.passed, prev.failed+c.failed, prev.skipped+c.skipped)
		if err := os.WriteFile(countsPath, []byte(sum), 0o644); err != nil {
			return err
		}
	}
	for _, f := range failures {
		fmt.Fprintln(out, "FAILED:", f)
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", c.passed, c.failed, c.skipped)
	if c.failed > 0 {
		return fmt.Errorf("%d failed", c.failed)
	}
	return nil
}

// summarise copies output to out and counts test results. If brief is not
// nil, it also gets the output of failed tests and the package lines.
func summarise(in io.Reader, out, brief io.Writer) (counts, []string, error) {
	pending := map[string]*strings.Builder{} // package+test -> output so far
	running := map[string]event{}            // package+test -> started, not finished
	var c counts
	var failures []string
	failedTests := map[string]int{} // package -> failed tests
	pkgFailed := map[string]bool{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	events := 0
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// go test prints build errors as plain text.
			fmt.Fprintln(out, string(line))
			if brief != nil {
				fmt.Fprintln(brief, string(line))
			}
			continue
		}
		events++
		switch e.Action {
		case "run":
			running[e.Package+" "+e.Test] = e
		case "output":
			io.WriteString(out, e.Output)
			if brief != nil {
				if e.Test == "" {
					io.WriteString(brief, e.Output)
				} else {
					k := e.Package + " " + e.Test
					if pending[k] == nil {
						pending[k] = &strings.Builder{}
					}
					pending[k].WriteString(e.Output)
				}
			}
		case "pass", "fail", "skip":
			delete(running, e.Package+" "+e.Test)
			if brief != nil && e.Test != "" {
				k := e.Package + " " + e.Test
				if b := pending[k]; b != nil && e.Action == "fail" {
					io.WriteString(brief, b.String())
				}
				delete(pending, k)
			}
			if e.Test == "" {
				if e.Action == "fail" {
					pkgFailed[e.Package] = true
				}
				continue
			}
			switch e.Action {
			case "pass":
				c.passed++
			case "fail":
				c.failed++
				failedTests[e.Package]++
				failures = append(failures, e.Package+" "+e.Test)
			case "skip":
				c.skipped++
			}
		}
	}
	if err := sc.Err(); err != nil {
		return c, nil, err
	}
	// Tests that never finished (panic, timeout): show what they printed.
	if brief != nil {
		keys := make([]string, 0, len(pending))
		for k := range pending {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			io.WriteString(brief, pending[k].String())
		}
	}
	// A test still running when its package failed was cut short by a
	// panic or the timeout: a failure.
	var unfinished []string
	for k, e := range running {
		if pkgFailed[e.Package] {
			unfinished = append(unfinished, k)
			failedTests[e.Package]++
		}
	}
	sort.Strings(unfinished)
	for _, k := range unfinished {
		c.failed++
		failures = append(failures, k+" (did not finish: panic or timeout)")
	}
	var pkgs []string
	for p := range pkgFailed {
		if failedTests[p] == 0 {
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		c.failed++
		failures = append(failures, p+" (package: build error, panic or timeout)")
	}
	if events == 0 {
		c.failed++
		failures = append(failures, "no go test -json events: did go test fail to start?")
	}
	return c, trimmed(failures), nil
}

func trimmed(s []string) []string {
	for i := range s {
		s[i] = strings.TrimSpace(s[i])
	}
	return s
}
