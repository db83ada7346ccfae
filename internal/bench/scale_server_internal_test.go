package bench

import (
	"testing"
	"time"
)

func TestListeningTime(t *testing.T) {
	arrived := time.Date(2026, 12, 3, 6, 0, 1, 0, time.UTC)
	tests := []struct {
		name, head string
		want       time.Time
	}{
		{"the line's own time", "time=2026-12-03T06:00:00.100Z level=INFO msg=\"opening store\"\n" +
			"time=2026-12-03T06:00:00.250Z level=INFO msg=\"strongroom listening\" listen=127.0.0.1:1\n",
			time.Date(2026, 12, 3, 6, 0, 0, 250_000_000, time.UTC)},
		{"an offset time", "time=2026-12-03T07:00:00.5+01:00 level=INFO msg=\"strongroom listening\"\n",
			time.Date(2026, 12, 3, 6, 0, 0, 500_000_000, time.UTC)},
		{"no time field", "level=INFO msg=\"strongroom listening\"\n", arrived},
		{"an unreadable time", "time=yesterday level=INFO msg=\"strongroom listening\"\n", arrived},
	}
	for _, tc := range tests {
		if got := listeningTime([]byte(tc.head), arrived); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
