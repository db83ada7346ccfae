package audit

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestFormatTime_MatchesLayout(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 12, 1, 17, 21, 7, 123456789, time.UTC),
		time.Date(1999, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 2, 28, 23, 59, 59, 999999999, time.FixedZone("x", -7*3600)),
		time.Date(9999, 12, 31, 0, 0, 0, 100, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 99, time.UTC),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(1<<35), r.Int64N(1e9)))
	}
	for _, tm := range times {
		if got, want := FormatTime(tm), tm.UTC().Format(TimeLayout); got != want {
			t.Fatalf("FormatTime(%v) = %s, want %s", tm, got, want)
		}
	}
}
