package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// rawCall sends a data-plane request with the admin's token and returns status, headers, body.
func (e *env) rawCall(t *testing.T, method, vault, pathAndQuery string, body []byte, token bool) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, strings.TrimSuffix(e.srv.VaultURL(vault), "/")+pathAndQuery, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token {
		tok, err := e.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost:" + strconv.Itoa(e.srv.Port) + "/.default"}})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, pathAndQuery, b)
		}
	}
	return resp.StatusCode, resp.Header, m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func innerCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	in, _ := e["innererror"].(map[string]any)
	c, _ := in["code"].(string)
	return c
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// dataPlaneTarget is what runDataPlaneSuite needs to know about the deployment behind its env
// beyond the API: how to restart it and which processes the canary scan inspects.
type dataPlaneTarget struct {
	// restart restarts the deployment's process(es) on their folders and returns an env on the
	// node the suite talks to.
	restart func(t *testing.T) *env
	// servers are every process of the deployment: the canary scan stops them all and checks
	// their output and data folders; at least one must hold SecretGet audit records.
	servers []*testenv.Server
}

func TestDataPlane_EndToEnd(t *testing.T) {
	e := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=0"}})
	runDataPlaneSuite(t, e, dataPlaneTarget{
		restart: func(t *testing.T) *env { e.srv.Restart(); return envFor(t, e.srv) },
		servers: []*testenv.Server{e.srv},
	})
}

// The same suite against a 3-node cluster, every request sent to a follower (which forwards
// to the leader). Restart is a rolling restart of every node; the canary scan covers every
// node's output and folder (raft log, snapshots, state machine).
func TestDataPlane_EndToEnd_ClusterFollower(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	follower := c.Follower()
	e := clusterEnv(t, c, follower)
	runDataPlaneSuite(t, e, dataPlaneTarget{
		restart: func(t *testing.T) *env {
			for _, s := range c.Nodes {
				s.Restart()
			}
			c.Leader(30 * time.Second)
			return clusterEnv(t, c, follower)
		},
		servers: c.Nodes,
	})
}

// runDataPlaneSuite is the core end-to-end data-plane suite, run against whatever deployment e
// talks to.
func runDataPlaneSuite(t *testing.T, e *env, target dataPlaneTarget) {
	ctx := context.Background()
	kv := e.createVault(t, "rg1", "kv-e2e", nil)
	canary := "CANARY-" + randHex(16)

	var v1, v2 string
	t.Run("SetGetLatestAndByVersion", func(t *testing.T) {
		r1, err := kv.SetSecret(ctx, "alpha", azsecrets.SetSecretParameters{Value: to.Ptr(canary), ContentType: to.Ptr("text/plain"), Tags: map[string]*string{"env": to.Ptr("dev")}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v1 = r1.ID.Version()
		if len(v1) != 32 || r1.ID.Name() != "alpha" || *r1.Value != canary {
			t.Fatalf("set returned id %q value ok=%v", *r1.ID, *r1.Value == canary)
		}
		if got := string(*r1.ID); got != fmt.Sprintf("https://kv-e2e.vault.localhost:%d/secrets/alpha/%s", e.srv.Port, v1) {
			t.Fatalf("id = %s", got)
		}
		if *r1.Attributes.RecoveryLevel != "Recoverable+Purgeable" || *r1.Attributes.RecoverableDays != 90 || !*r1.Attributes.Enabled {
			t.Fatalf("attributes = %+v", r1.Attributes)
		}
		r2, err := kv.SetSecret(ctx, "ALPHA", azsecrets.SetSecretParameters{Value: to.Ptr("second")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v2 = r2.ID.Version()
		if r2.ID.Name() != "alpha" {
			t.Fatalf("name case: a new version keeps the first spelling, got %q", r2.ID.Name())
		}
		latest, err := kv.GetSecret(ctx, "Alpha", "", nil) // trailing-slash form, case-insensitive name
		if err != nil || *latest.Value != "second" || latest.ID.Version() != v2 {
			t.Fatalf("latest = %v, %v", latest.ID, err)
		}
		old, err := kv.GetSecret(ctx, "alpha", v1, nil)
		if err != nil || *old.Value != canary || *old.ContentType != "text/plain" || *old.Tags["env"] != "dev" {
			t.Fatalf("by version = %+v, %v", old, err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := kv.GetSecret(ctx, "missing", "", nil)
		wantStatus(t, err, 404, "SecretNotFound")
		_, err = kv.GetSecret(ctx, "alpha", strings.Repeat("0", 32), nil)
		wantStatus(t, err, 404, "SecretNotFound")
		_, err = kv.UpdateSecretProperties(ctx, "missing", "", azsecrets.UpdateSecretPropertiesParameters{ContentType: to.Ptr("x")}, nil)
		wantStatus(t, err, 404, "SecretNotFound")
		_, err = kv.DeleteSecret(ctx, "missing", nil)
		wantStatus(t, err, 404, "SecretNotFound")
		_, err = kv.GetDeletedSecret(ctx, "alpha", nil)
		wantStatus(t, err, 404, "SecretNotFound")
	})

	t.Run("UpdateAttributesAndDisabled", func(t *testing.T) {
		exp := time.Now().Add(48 * time.Hour).Truncate(time.Second)
		up, err := kv.UpdateSecretProperties(ctx, "alpha", v1, azsecrets.UpdateSecretPropertiesParameters{
			SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false), Expires: &exp},
			Tags:             map[string]*string{"stage": to.Ptr("two")},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if up.Value != nil || *up.Attributes.Enabled || !up.Attributes.Expires.Equal(exp) || *up.Tags["stage"] != "two" || up.Tags["env"] != nil {
			t.Fatalf("update = %+v", up)
		}
		_, err = kv.GetSecret(ctx, "alpha", v1, nil)
		re := wantStatus(t, err, 403, "Forbidden")
		if !strings.Contains(re.Error(), "SecretDisabled") {
			t.Fatalf("disabled get: %v", re)
		}
		if _, err := kv.GetSecret(ctx, "alpha", v2, nil); err != nil {
			t.Fatalf("other version still readable: %v", err)
		}
		if _, err := kv.UpdateSecretProperties(ctx, "alpha", v1, azsecrets.UpdateSecretPropertiesParameters{SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(true)}}, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := kv.GetSecret(ctx, "alpha", v1, nil); err != nil || *got.Value != canary {
			t.Fatalf("re-enabled get: %v", err)
		}
	})

	t.Run("Versions", func(t *testing.T) {
		var got []string
		pager := kv.NewListSecretPropertiesVersionsPager("alpha", nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Value {
				got = append(got, it.ID.Version())
			}
		}
		want := []string{v1, v2}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("versions = %v, want %v", got, want)
		}
	})

	t.Run("ListPagingOver25", func(t *testing.T) {
		for i := range 30 {
			if _, err := kv.SetSecret(ctx, fmt.Sprintf("page-%02d", i), azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
				t.Fatal(err)
			}
		}
		names := map[string]bool{}
		pages := 0
		pager := kv.NewListSecretPropertiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, it := range page.Value {
				if it.ID.Version() != "" {
					t.Fatalf("list item has a versioned id: %s", *it.ID)
				}
				names[it.ID.Name()] = true
			}
		}
		if len(names) != 31 || pages < 2 {
			t.Fatalf("listed %d names over %d pages, want 31 over >= 2", len(names), pages)
		}
		// maxresults as JS and Python send it, and its limits.
		st, _, body := e.rawCall(t, "GET", "kv-e2e", "/secrets?api-version=7.4&maxresults=10", nil, true)
		if st != 200 || len(body["value"].([]any)) != 10 || body["nextLink"] == nil {
			t.Fatalf("maxresults=10: %d %v", st, body["nextLink"])
		}
		next := body["nextLink"].(string)
		if !strings.Contains(next, "api-version=7.4") || !strings.Contains(next, "maxresults=10") {
			t.Fatalf("nextLink %q lacks api-version or maxresults", next)
		}
		for _, bad := range []string{"0", "26", "x"} {
			st, _, body := e.rawCall(t, "GET", "kv-e2e", "/secrets?api-version=7.4&maxresults="+bad, nil, true)
			if st != 400 || errCode(body) != "BadParameter" {
				t.Fatalf("maxresults=%s: %d %s", bad, st, errCode(body))
			}
		}
	})

	t.Run("BadInputIsRejectedWhole", func(t *testing.T) {
		tags := map[string]*string{}
		for i := range 16 {
			tags[fmt.Sprint("t", i)] = to.Ptr("v")
		}
		cases := []struct {
			name   string
			secret string
			params azsecrets.SetSecretParameters
		}{
			{"too many tags", "alpha", azsecrets.SetSecretParameters{Value: to.Ptr("x"), Tags: tags}},
			{"value too large", "alpha", azsecrets.SetSecretParameters{Value: to.Ptr(strings.Repeat("a", 25*1024+1))}},
			{"content type too long", "alpha", azsecrets.SetSecretParameters{Value: to.Ptr("x"), ContentType: to.Ptr(strings.Repeat("c", 256))}},
			{"invalid name", "bad_name", azsecrets.SetSecretParameters{Value: to.Ptr("x")}},
			{"name too long", strings.Repeat("n", 128), azsecrets.SetSecretParameters{Value: to.Ptr("x")}},
			{"missing value", "alpha", azsecrets.SetSecretParameters{}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := kv.SetSecret(ctx, c.secret, c.params, nil)
				wantStatus(t, err, 400, "BadParameter")
			})
		}
		for _, body := range []string{`{"value":`, `[]`, `{"value": 5}`, `{"value":"x","tags":"no"}`} {
			st, _, m := e.rawCall(t, "PUT", "kv-e2e", "/secrets/alpha?api-version=7.4", []byte(body), true)
			if st != 400 || errCode(m) != "BadParameter" {
				t.Fatalf("body %s: %d %v", body, st, m)
			}
		}
		st, _, m := e.rawCall(t, "GET", "kv-e2e", "/secrets/alpha", nil, true)
		if st != 400 || errCode(m) != "BadParameter" {
			t.Fatalf("missing api-version: %d %v", st, m)
		}
		// Nothing was half-written: alpha still has exactly its two versions.
		n := 0
		pager := kv.NewListSecretPropertiesVersionsPager("alpha", nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Value)
		}
		if n != 2 {
			t.Fatalf("alpha has %d versions after rejected writes, want 2", n)
		}
	})

	t.Run("Authentication", func(t *testing.T) {
		st, h, m := e.rawCall(t, "PUT", "kv-e2e", "/secrets/x?api-version=7.4", nil, false)
		if st != 401 || errCode(m) != "Unauthorized" {
			t.Fatalf("unauthenticated: %d %v", st, m)
		}
		wantChallenge := fmt.Sprintf(`Bearer authorization="%s/%s", resource="https://vault.localhost:%d"`, e.publicURL, e.srv.Admin.TenantID, e.srv.Port)
		if got := h.Get("WWW-Authenticate"); got != wantChallenge {
			t.Fatalf("challenge = %q, want %q", got, wantChallenge)
		}
		req, _ := http.NewRequest("GET", e.srv.VaultURL("kv-e2e")+"secrets/alpha?api-version=7.4", nil)
		req.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("forged token: %d", resp.StatusCode)
		}
	})

	t.Run("SoftDeleteRecoverPurge", func(t *testing.T) {
		if _, err := kv.SetSecret(ctx, "gone", azsecrets.SetSecretParameters{Value: to.Ptr("bye")}, nil); err != nil {
			t.Fatal(err)
		}
		del, err := kv.DeleteSecret(ctx, "gone", nil)
		if err != nil {
			t.Fatal(err)
		}
		if del.Value != nil || del.RecoveryID == nil || !strings.HasSuffix(*del.RecoveryID, "/deletedsecrets/gone") ||
			del.ScheduledPurgeDate.Sub(*del.DeletedDate) != 90*24*time.Hour {
			t.Fatalf("delete = %+v", del)
		}
		_, err = kv.GetSecret(ctx, "gone", "", nil)
		wantStatus(t, err, 404, "SecretNotFound")
		_, err = kv.SetSecret(ctx, "gone", azsecrets.SetSecretParameters{Value: to.Ptr("again")}, nil)
		re := wantStatus(t, err, 409, "Conflict")
		if !strings.Contains(re.Error(), "ObjectIsDeletedButRecoverable") {
			t.Fatalf("conflict lacks inner code: %v", re)
		}
		if _, err := kv.GetDeletedSecret(ctx, "gone", nil); err != nil {
			t.Fatal(err)
		}
		found := false
		pager := kv.NewListDeletedSecretPropertiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Value {
				found = found || it.ID.Name() == "gone"
			}
		}
		if !found {
			t.Fatal("deleted secret not listed")
		}
		if _, err := kv.RecoverDeletedSecret(ctx, "gone", nil); err != nil {
			t.Fatal(err)
		}
		if got, err := kv.GetSecret(ctx, "gone", "", nil); err != nil || *got.Value != "bye" {
			t.Fatalf("after recover: %v", err)
		}
		_, err = kv.PurgeDeletedSecret(ctx, "gone", nil)
		wantStatus(t, err, 404, "SecretNotFound") // purging a live secret
		if _, err := kv.DeleteSecret(ctx, "gone", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.PurgeDeletedSecret(ctx, "gone", nil); err != nil {
			t.Fatal(err)
		}
		_, err = kv.GetDeletedSecret(ctx, "gone", nil)
		wantStatus(t, err, 404, "SecretNotFound")
		if _, err := kv.SetSecret(ctx, "gone", azsecrets.SetSecretParameters{Value: to.Ptr("reborn")}, nil); err != nil {
			t.Fatalf("name not reusable after purge: %v", err)
		}
	})

	t.Run("BackupRestore", func(t *testing.T) {
		b, err := kv.BackupSecret(ctx, "alpha", nil)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b.Value, []byte(canary)) {
			t.Fatal("backup blob holds the value in plaintext")
		}
		_, err = kv.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
		wantStatus(t, err, 409, "Conflict")
		if _, err := kv.DeleteSecret(ctx, "alpha", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.PurgeDeletedSecret(ctx, "alpha", nil); err != nil {
			t.Fatal(err)
		}
		tampered := bytes.Clone(b.Value)
		tampered[len(tampered)/2] ^= 1
		_, err = kv.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: tampered}, nil)
		wantStatus(t, err, 400, "BadParameter")
		_, err = kv.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: []byte("not a blob")}, nil)
		wantStatus(t, err, 400, "BadParameter")
		// Restore into another vault of the same deployment.
		kv2 := e.createVault(t, "rg1", "kv-e2e-restore", nil)
		res, err := kv2.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Value != nil || res.ID.Version() != v2 {
			t.Fatalf("restore = %+v", res)
		}
		for ver, want := range map[string]string{v1: canary, v2: "second"} {
			got, err := kv2.GetSecret(ctx, "alpha", ver, nil)
			if err != nil || *got.Value != want {
				t.Fatalf("restored version %s: %v", ver, err)
			}
		}
		// Put it back in the first vault for the persistence check.
		if _, err := kv.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("PurgeProtection", func(t *testing.T) {
		pp := e.createVault(t, "rg1", "kv-e2e-pp", &armkeyvault.VaultProperties{EnablePurgeProtection: to.Ptr(true), SoftDeleteRetentionInDays: to.Ptr[int32](7)})
		if _, err := pp.SetSecret(ctx, "keep", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil); err != nil {
			t.Fatal(err)
		}
		del, err := pp.DeleteSecret(ctx, "keep", nil)
		if err != nil {
			t.Fatal(err)
		}
		if *del.Attributes.RecoveryLevel != "CustomizedRecoverable" || *del.Attributes.RecoverableDays != 7 {
			t.Fatalf("recovery level = %s/%d", *del.Attributes.RecoveryLevel, *del.Attributes.RecoverableDays)
		}
		_, err = pp.PurgeDeletedSecret(ctx, "keep", nil)
		re := wantStatus(t, err, 403, "Forbidden")
		if !strings.Contains(re.Error(), "purge protection") {
			t.Fatalf("purge-protection message: %v", re)
		}
	})

	t.Run("PersistsAcrossRestart", func(t *testing.T) {
		e2 := target.restart(t)
		kv := e2.srv.Secrets("kv-e2e", e2.cred, e2.hc)
		got, err := kv.GetSecret(ctx, "alpha", v1, nil)
		if err != nil || *got.Value != canary {
			t.Fatalf("after restart: %v", err)
		}
		if _, err := kv.GetDeletedSecret(ctx, "gone", nil); err == nil {
			t.Fatal("purged secret came back after restart")
		}
	})

	t.Run("CanaryNeverInPlaintext", func(t *testing.T) {
		sawGet := false
		for _, srv := range target.servers {
			srv.Stop()
			if code := srv.ExitCode(); code != 0 {
				t.Fatalf("server exited %d on SIGTERM:\n%s", code, srv.Stderr.String())
			}
			for _, out := range []string{srv.Stdout.String(), srv.Stderr.String()} {
				if strings.Contains(out, canary) {
					t.Fatal("canary value appears in the server's output")
				}
			}
			files := 0
			err := filepath.Walk(srv.DataDir, func(path string, info os.FileInfo, err error) error {
				if err != nil || info.IsDir() || info.Mode()&os.ModeSocket != 0 {
					return err
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				files++
				if bytes.Contains(b, []byte(canary)) {
					t.Errorf("canary value in plaintext in %s", path)
				}
				return nil
			})
			if err != nil || files < 5 {
				t.Fatalf("scanned %d files in %s: %v", files, srv.DataDir, err)
			}
			audit, err := os.ReadFile(filepath.Join(srv.DataDir, "audit", "audit.log"))
			sawGet = sawGet || (err == nil && bytes.Contains(audit, []byte(`"operationName":"SecretGet"`)))
		}
		if !sawGet {
			t.Fatal("audit log lacks SecretGet records")
		}
	})
}

func TestDataPlane_Throttling(t *testing.T) {
	e := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=5"}})
	e.createVault(t, "rg", "kv-throttle", nil)
	saw429 := false
	for range 12 {
		st, h, m := e.rawCall(t, "GET", "kv-throttle", "/secrets?api-version=7.4", nil, true)
		if st == 429 {
			saw429 = true
			if errCode(m) != "Throttled" {
				t.Fatalf("429 code = %q", errCode(m))
			}
			if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("Retry-After = %q", h.Get("Retry-After"))
			}
		} else if st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if !saw429 {
		t.Fatal("12 requests against a budget of 5 were never throttled")
	}
}
