package healthcheck

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Records written before the names were lower-case still read.
func TestJSONNamesOldAndNew(t *testing.T) {
	old := `{"Test":["CMD-SHELL","true"],"Interval":1000000000,"StartPeriod":2000000000,"StartInterval":3000000000,"Retries":4,"OnUnhealthy":"kill"}`
	want := Config{Test: []string{TestCmdShell, "true"}, Interval: time.Second, StartPeriod: 2 * time.Second, StartInterval: 3 * time.Second, Retries: 4, OnUnhealthy: ActionKill}
	var c Config
	if err := json.Unmarshal([]byte(old), &c); err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("old config: %+v, %v", c, err)
	}
	b, _ := json.Marshal(want)
	if s := string(b); !strings.Contains(s, `"start_period"`) || !strings.Contains(s, `"on_unhealthy"`) || strings.Contains(s, `"Test"`) {
		t.Errorf("new config JSON %s", s)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, want) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	oldState := `{"Status":"unhealthy","FailingStreak":3,"Log":[{"Start":"2026-01-01T00:00:00Z","End":"2026-01-01T00:00:01Z","ExitCode":1,"Output":"no"}]}`
	var st State
	if err := json.Unmarshal([]byte(oldState), &st); err != nil || st.Status != StatusUnhealthy || st.FailingStreak != 3 || len(st.Log) != 1 || st.Log[0].ExitCode != 1 || st.Log[0].Output != "no" {
		t.Fatalf("old state: %+v, %v", st, err)
	}
	b, _ = json.Marshal(st)
	if s := string(b); !strings.Contains(s, `"failing_streak":3`) || !strings.Contains(s, `"exit_code":1`) {
		t.Errorf("new state JSON %s", s)
	}
}
