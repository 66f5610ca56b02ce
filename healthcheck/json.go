package healthcheck

import (
	"encoding/json"
	"time"
)

// The JSON of Config, State and Result uses lower-case snake_case names, as
// the rest of tend's records. Records written before that used Go's field
// names ("StartPeriod", "FailingStreak", "ExitCode"); decoding still reads
// them (encoding/json matches single words case-insensitively; the
// compound ones are read here).

// UnmarshalJSON reads the current and the older names.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	var v struct {
		plain
		OldStartPeriod   *time.Duration `json:"StartPeriod"`
		OldStartInterval *time.Duration `json:"StartInterval"`
		OldOnUnhealthy   *Action        `json:"OnUnhealthy"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Config(v.plain)
	if v.OldStartPeriod != nil && c.StartPeriod == 0 {
		c.StartPeriod = *v.OldStartPeriod
	}
	if v.OldStartInterval != nil && c.StartInterval == 0 {
		c.StartInterval = *v.OldStartInterval
	}
	if v.OldOnUnhealthy != nil && c.OnUnhealthy == "" {
		c.OnUnhealthy = *v.OldOnUnhealthy
	}
	return nil
}

// UnmarshalJSON reads the current and the older names.
func (s *State) UnmarshalJSON(b []byte) error {
	type plain State
	var v struct {
		plain
		OldFailingStreak *int `json:"FailingStreak"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = State(v.plain)
	if v.OldFailingStreak != nil && s.FailingStreak == 0 {
		s.FailingStreak = *v.OldFailingStreak
	}
	return nil
}

// UnmarshalJSON reads the current and the older names.
func (r *Result) UnmarshalJSON(b []byte) error {
	type plain Result
	var v struct {
		plain
		OldExitCode *int `json:"ExitCode"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Result(v.plain)
	if v.OldExitCode != nil && r.ExitCode == 0 {
		r.ExitCode = *v.OldExitCode
	}
	return nil
}
