package auditquery

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// position is "after this line": the file, the offset just past the line's newline and the
// line's hash. The hash lets a token outlive a rotation: the active file's lines move,
// unchanged, to a rotated file of the same size, where the line ending at the offset is found
// again; and it refuses a token whose file was rewritten.
type position struct {
	file   string
	offset int64
	hash   string
}

type wireToken struct {
	F string `json:"f"`
	O int64  `json:"o"`
	H string `json:"h"`
}

// token encodes p for a caller; it carries no record content.
func (p position) token() string {
	b, _ := json.Marshal(wireToken{F: p.file, O: p.offset, H: p.hash})
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadToken means a continuation token is not one this package made.
var ErrBadToken = errors.New("the continuation token is malformed")

func parseToken(s string) (position, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return position{}, ErrBadToken
	}
	var w wireToken
	if json.Unmarshal(raw, &w) != nil || w.O <= 0 || len(w.H) != 64 {
		return position{}, ErrBadToken
	}
	// The name comes from a caller: only a log file name of the folder, never a path.
	if _, ok := parseName(w.F); !ok {
		return position{}, ErrBadToken
	}
	return position{file: w.F, offset: w.O, hash: w.H}, nil
}

// locate finds where a token's position is now: the index of the file to continue in and the
// position within it.
func locate(dir string, files []logFile, p position) (int, position, error) {
	named, _ := parseName(p.file)
	for i, f := range files {
		if f.name != p.file {
			continue
		}
		ok, err := endsLineAt(filepath.Join(dir, f.name), p.offset, p.hash)
		if err != nil {
			return 0, position{}, err
		}
		if ok {
			return i, p, nil
		}
		if !f.active {
			return 0, position{}, ErrStaleToken
		}
	}
	if named.active {
		// The active file was rotated since: its lines are now in a rotated file, most likely
		// the newest.
		for i := len(files) - 1; i >= 0; i-- {
			if files[i].active {
				continue
			}
			ok, err := endsLineAt(filepath.Join(dir, files[i].name), p.offset, p.hash)
			if err != nil {
				return 0, position{}, err
			}
			if ok {
				return i, position{file: files[i].name, offset: p.offset, hash: p.hash}, nil
			}
		}
		return 0, position{}, ErrStaleToken
	}
	// A rotated file removed by retention: continue with the first file written after it.
	for i, f := range files {
		if named.before(f) {
			return i, position{}, nil
		}
	}
	return len(files), position{}, nil
}

// endsLineAt reports whether, in path, a line whose hash is hash ends (with its newline) just
// before offset.
func endsLineAt(path string, offset int64, hash string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("opening %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	for window := int64(4 << 10); ; window *= 4 {
		start := max(offset-window, 0)
		buf := make([]byte, offset-start)
		if _, err := f.ReadAt(buf, start); err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil // the file is shorter than the offset
			}
			return false, fmt.Errorf("reading %s: %w", filepath.Base(path), err)
		}
		if len(buf) == 0 || buf[len(buf)-1] != '\n' {
			return false, nil
		}
		body := buf[:len(buf)-1]
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			return lineHash(body[i+1:]) == hash, nil
		}
		if start == 0 {
			return lineHash(body) == hash, nil
		}
		if window > MaxLineBytes {
			return false, nil
		}
	}
}
