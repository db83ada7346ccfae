package azkv_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/strongroom/strongroom/internal/azkv"
)

func TestSecretBundle_AppendJSON_MatchesMarshal(t *testing.T) {
	str := func(s string) *string { return &s }
	i64 := func(v int64) *int64 { return &v }
	days := 90
	yes, no := true, false
	var bundles []azkv.SecretBundle
	for i, s := range []string{"", "v", `q"uo\te <b>&</b>`, "ctl\x00\n\t", "üñí ✓ \xff \u2028"} {
		b := azkv.SecretBundle{ID: "https://kv.vault.localhost:8443/secrets/n" + s}
		switch i % 3 {
		case 0:
			b.Value, b.ContentType = str(s), s
			b.Attributes = azkv.SecretAttributes{Enabled: &yes, NotBefore: i64(-1), Expires: i64(1 << 40), Created: 1, Updated: 2,
				RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: &days}
			b.Tags = map[string]string{"b": s, "a": "1", s: "k", "<z>": "&"}
		case 1:
			b.Attributes = azkv.SecretAttributes{Enabled: &no}
			b.Managed = true
			b.RecoveryID, b.ScheduledPurgeDate, b.DeletedDate = "https://kv/deletedsecrets/n", 5, 6
		}
		bundles = append(bundles, b)
	}
	many := azkv.SecretBundle{Tags: map[string]string{}}
	for i := range 40 {
		many.Tags[fmt.Sprint("t", i)] = fmt.Sprint(i)
	}
	bundles = append(bundles, azkv.SecretBundle{}, many)
	for i, b := range bundles {
		want := azkv.Marshal(b)
		if got := b.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("bundle %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
