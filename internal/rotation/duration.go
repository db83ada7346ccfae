package rotation

import (
	"fmt"
	"strconv"
	"time"
)

// Duration is an ISO-8601 duration as Key Vault's rotation policies write them: "P90D",
// "P3M" (months), "PT48H", "P1Y10D", "PT5M" (minutes). Years, months, weeks and days move the
// calendar (time.AddDate), the time part moves the clock, as in Key Vault.
type Duration struct {
	Years, Months, Weeks, Days, Hours, Minutes, Seconds int
	text                                                string
}

// maxDurationPart bounds each number so that no duration overflows a time.Time.
const maxDurationPart = 100000

// The designators' ranks (their order in a duration), before and after the T.
var (
	dateDesignators = map[byte]int{'Y': 1, 'M': 2, 'W': 3, 'D': 4}
	timeDesignators = map[byte]int{'H': 5, 'M': 6, 'S': 7}
)

// ParseDuration parses an ISO-8601 duration with whole numbers ("P1.5D" is refused).
func ParseDuration(s string) (Duration, error) {
	d := Duration{text: s}
	if len(s) < 3 || s[0] != 'P' {
		return d, fmt.Errorf("%q is not an ISO-8601 duration such as P90D, P3M or PT48H", s)
	}
	inTime, seen, last := false, false, 0
	for i := 1; i < len(s); {
		if s[i] == 'T' {
			if inTime || i == len(s)-1 {
				return d, fmt.Errorf("%q is not an ISO-8601 duration such as P90D, P3M or PT48H", s)
			}
			inTime, last = true, 0
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j == len(s) {
			return d, fmt.Errorf("%q is not an ISO-8601 duration such as P90D, P3M or PT48H", s)
		}
		n, err := strconv.Atoi(s[i:j])
		if err != nil || n > maxDurationPart {
			return d, fmt.Errorf("%q has a number out of range", s)
		}
		// Designators must come in order, each at most once.
		order := dateDesignators
		if inTime {
			order = timeDesignators
		}
		rank, ok := order[s[j]]
		if !ok || rank <= last {
			return d, fmt.Errorf("%q is not an ISO-8601 duration such as P90D, P3M or PT48H", s)
		}
		last, seen = rank, true
		*[...]*int{&d.Years, &d.Months, &d.Weeks, &d.Days, &d.Hours, &d.Minutes, &d.Seconds}[rank-1] = n
		i = j + 1
	}
	if !seen {
		return d, fmt.Errorf("%q is not an ISO-8601 duration such as P90D, P3M or PT48H", s)
	}
	return d, nil
}

// String is the duration as it was written.
func (d Duration) String() string { return d.text }

// After is t moved forward by d.
func (d Duration) After(t time.Time) time.Time {
	t = t.AddDate(d.Years, d.Months, 7*d.Weeks+d.Days)
	return t.Add(time.Duration(d.Hours)*time.Hour + time.Duration(d.Minutes)*time.Minute + time.Duration(d.Seconds)*time.Second)
}

// Before is t moved back by d.
func (d Duration) Before(t time.Time) time.Time {
	t = t.AddDate(-d.Years, -d.Months, -(7*d.Weeks + d.Days))
	return t.Add(-(time.Duration(d.Hours)*time.Hour + time.Duration(d.Minutes)*time.Minute + time.Duration(d.Seconds)*time.Second))
}
