package backend

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testRecord(id string) *Container {
	return &Container{ID: id, Name: "n-" + id[:4], State: StateExited, Created: time.Unix(100, 0).UTC(), ExitCode: 3, RestartCount: 2,
		Config: CreateOptions{Cmd: []string{"sh"}, Labels: map[string]string{"a": "b"}, Restart: RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}}}
}

func TestStoreRoundTripAndModes(t *testing.T) {
	s := store{dir: filepath.Join(t.TempDir(), "containers")}
	id := strings.Repeat("ab", 32)
	if err := s.create(id); err != nil {
		t.Fatal(err)
	}
	rec := testRecord(id)
	if err := s.write(rec); err != nil {
		t.Fatal(err)
	}
	got, bad, err := s.load()
	if err != nil || len(bad) != 0 || len(got) != 1 {
		t.Fatalf("load: %v, %v, %d records", err, bad, len(got))
	}
	if got[0].ID != id || got[0].ExitCode != 3 || got[0].Config.Labels["a"] != "b" || got[0].Config.Restart.MaximumRetryCount != 2 {
		t.Errorf("loaded %+v", got[0])
	}
	for path, want := range map[string]os.FileMode{s.dir: 0o700, s.containerDir(id): 0o700, filepath.Join(s.containerDir(id), recordFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

func TestStoreBadRecords(t *testing.T) {
	s := store{dir: filepath.Join(t.TempDir(), "containers")}
	good, corrupt, newer, torn := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64), strings.Repeat("4", 64)
	for _, id := range []string{good, corrupt, newer, torn} {
		if err := s.create(id); err != nil {
			t.Fatal(err)
		}
		if err := s.write(testRecord(id)); err != nil {
			t.Fatal(err)
		}
	}
	corruptPath := filepath.Join(s.containerDir(corrupt), recordFile)
	if err := os.WriteFile(corruptPath, []byte(`{"version":1,"container":{"id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	newerPath := filepath.Join(s.containerDir(newer), recordFile)
	if err := os.WriteFile(newerPath, []byte(`{"version":9,"container":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A crash between the temporary write and the rename keeps the old
	// record and leaves the temporary file.
	beforeRename = func(string) error { return errors.New("crash") }
	upd := testRecord(torn)
	upd.ExitCode = 99
	err := s.write(upd)
	beforeRename = nil
	if !errors.Is(err, errInjected) {
		t.Fatalf("write with fault: %v", err)
	}
	tmps, _ := filepath.Glob(filepath.Join(s.containerDir(torn), tmpPrefix+"*"))
	if len(tmps) != 1 {
		t.Fatalf("temporary files after the fault: %v", tmps)
	}

	got, bad, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]*Container{}
	for _, c := range got {
		ids[c.ID] = c
	}
	if len(ids) != 2 || ids[good] == nil || ids[torn] == nil || ids[torn].ExitCode != 3 {
		t.Errorf("loaded %v; want the good record and the old version of the torn one", ids)
	}
	if len(bad) != 2 {
		t.Fatalf("bad records: %v", bad)
	}
	for _, want := range []string{corruptPath, newerPath} {
		found := false
		for _, err := range bad {
			var re *RecordError
			if errors.As(err, &re) && re.Path == want && strings.Contains(err.Error(), want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error names %s: %v", want, bad)
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(s.containerDir(torn), tmpPrefix+"*")); len(tmps) != 0 {
		t.Errorf("stray temporary files not removed by load: %v", tmps)
	}
	if _, err := os.Stat(corruptPath); err != nil {
		t.Errorf("corrupt record was dropped instead of left for inspection: %v", err)
	}
}

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 63), false},
		{strings.Repeat("A", 64), false},
		{"../" + strings.Repeat("a", 61), false},
		{strings.Repeat("g", 64), false},
	} {
		if err := validateID(tc.id); (err == nil) != tc.ok {
			t.Errorf("validateID(%q) = %v", tc.id, err)
		}
	}
}
