package rbac

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseISODuration reads the ISO 8601 durations PIM uses (P365D, PT8H, P1DT12H, PT30M, P2W).
// A year counts 365 days and a month 30, as PIM's own policy limits do; fractions are refused.
func ParseISODuration(s string) (time.Duration, error) {
	orig := s
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) < 3 || s[0] != 'P' {
		return 0, fmt.Errorf("duration %q is not an ISO 8601 duration such as PT8H or P365D", orig)
	}
	s = s[1:]
	var total time.Duration
	inTime := false
	for s != "" {
		if s[0] == 'T' {
			if inTime || len(s) == 1 {
				return 0, fmt.Errorf("duration %q is not an ISO 8601 duration such as PT8H or P365D", orig)
			}
			inTime, s = true, s[1:]
			continue
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 9 {
			return 0, fmt.Errorf("duration %q is not an ISO 8601 duration such as PT8H or P365D", orig)
		}
		n, _ := strconv.Atoi(s[:i])
		var unit time.Duration
		switch c := s[i]; {
		case !inTime && c == 'Y':
			unit = 365 * 24 * time.Hour
		case !inTime && c == 'M':
			unit = 30 * 24 * time.Hour
		case !inTime && c == 'W':
			unit = 7 * 24 * time.Hour
		case !inTime && c == 'D':
			unit = 24 * time.Hour
		case inTime && c == 'H':
			unit = time.Hour
		case inTime && c == 'M':
			unit = time.Minute
		case inTime && c == 'S':
			unit = time.Second
		default:
			return 0, fmt.Errorf("duration %q is not an ISO 8601 duration such as PT8H or P365D", orig)
		}
		const limit = 100 * 365 * 24 * time.Hour
		if time.Duration(n) > limit/unit || total+time.Duration(n)*unit > limit {
			return 0, fmt.Errorf("duration %q is too long", orig)
		}
		total += time.Duration(n) * unit
		if total > limit {
			return 0, fmt.Errorf("duration %q is too long", orig)
		}
		s = s[i+1:]
	}
	return total, nil
}

// FormatISODuration writes d as ISO 8601 in days, hours, minutes and seconds (P1DT2H, PT30M).
func FormatISODuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	var b strings.Builder
	b.WriteByte('P')
	if days > 0 {
		fmt.Fprintf(&b, "%dD", days)
	}
	if d > 0 {
		b.WriteByte('T')
		if h := d / time.Hour; h > 0 {
			fmt.Fprintf(&b, "%dH", h)
			d -= h * time.Hour
		}
		if m := d / time.Minute; m > 0 {
			fmt.Fprintf(&b, "%dM", m)
			d -= m * time.Minute
		}
		if d > 0 {
			fmt.Fprintf(&b, "%dS", d/time.Second)
		}
	}
	return b.String()
}
