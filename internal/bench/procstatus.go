package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcMemory is a process's memory from /proc/<pid>/status, in bytes.
type ProcMemory struct {
	RSS  int64 // VmRSS: resident set, file-backed pages (the mmapped store) included
	Anon int64 // RssAnon: resident anonymous memory (the Go heap, stacks)
	HWM  int64 // VmHWM: the kernel's peak VmRSS since the process started
}

// procMemory reads pid's memory figures.
func procMemory(pid int) (ProcMemory, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ProcMemory{}, fmt.Errorf("reading server memory: %w", err)
	}
	return parseProcStatus(string(data))
}

// parseProcStatus extracts VmRSS, RssAnon and VmHWM ("Name:\t  1234 kB" lines) from the text
// of /proc/<pid>/status. VmRSS and RssAnon are required (RssAnon exists since Linux 4.5).
func parseProcStatus(s string) (ProcMemory, error) {
	var m ProcMemory
	fields := map[string]*int64{"VmRSS": &m.RSS, "RssAnon": &m.Anon, "VmHWM": &m.HWM}
	seen := map[string]bool{}
	for line := range strings.SplitSeq(s, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		dst, want := fields[name]
		if !ok || !want {
			continue
		}
		parts := strings.Fields(rest)
		if len(parts) != 2 || parts[1] != "kB" {
			return ProcMemory{}, fmt.Errorf("parsing /proc status: unexpected %s line %q", name, line)
		}
		kb, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || kb < 0 {
			return ProcMemory{}, fmt.Errorf("parsing /proc status: %s: bad number %q", name, parts[0])
		}
		*dst = kb << 10
		seen[name] = true
	}
	for _, name := range []string{"VmRSS", "RssAnon"} {
		if !seen[name] {
			return ProcMemory{}, fmt.Errorf("parsing /proc status: no %s line", name)
		}
	}
	return m, nil
}

// memSampler samples a process's memory every interval and keeps the peaks of RSS and of
// anonymous memory (the kernel keeps a peak for RSS only).
type memSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak ProcMemory
}

func startMemSampler(pid int, every time.Duration) *memSampler {
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			s.sample(pid)
			select {
			case <-s.stop:
				s.sample(pid)
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *memSampler) sample(pid int) {
	m, err := procMemory(pid)
	if err != nil {
		return // the process is gone; the peaks so far stand
	}
	s.mu.Lock()
	s.peak.RSS, s.peak.Anon, s.peak.HWM = max(s.peak.RSS, m.RSS), max(s.peak.Anon, m.Anon), max(s.peak.HWM, m.HWM)
	s.mu.Unlock()
}

// finish stops the sampler and returns the peaks.
func (s *memSampler) finish() ProcMemory {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
