package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// dataPlaneSuite is the core end-to-end data-plane suite, run against whatever deployment e
// talks to. Each case makes its own vault and secrets, so any one runs alone
// (-run 'TestDataPlane_EndToEnd/Versions'); they share only the deployment and the canary value,
// which CanaryNeverInPlaintext looks for in everything the deployment wrote.
type dataPlaneSuite struct {
	e      *env
	target dataPlaneTarget
	canary string
}

func runDataPlaneSuite(t *testing.T, e *env, target dataPlaneTarget) {
	s := &dataPlaneSuite{e: e, target: target, canary: "CANARY-" + randHex(16)}
	for _, c := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"SetGetLatestAndByVersion", s.setGetLatestAndByVersion},
		{"NotFound", s.notFound},
		{"UpdateAttributesAndDisabled", s.updateAttributesAndDisabled},
		{"Versions", s.versions},
		{"ListPagingOver25", s.listPagingOver25},
		{"BadInputIsRejectedWhole", s.badInputIsRejectedWhole},
		{"Authentication", s.authentication},
		{"SoftDeleteRecoverPurge", s.softDeleteRecoverPurge},
		{"BackupRestore", s.backupRestore},
		{"PurgeProtection", s.purgeProtection},
		{"PersistsAcrossRestart", s.persistsAcrossRestart},
		{"CanaryNeverInPlaintext", s.canaryNeverInPlaintext}, // last: it stops the deployment
	} {
		t.Run(c.name, c.run)
	}
}

// seedAlpha makes vault and writes the secret "alpha" twice: v1 holds the canary (content type
// text/plain, tag env=dev), v2 "second".
func (s *dataPlaneSuite) seedAlpha(t *testing.T, vault string) (kv *azsecrets.Client, v1, v2 string) {
	t.Helper()
	ctx := context.Background()
	kv = s.e.createVault(t, "rg1", vault, nil)
	r1, err := kv.SetSecret(ctx, "alpha", azsecrets.SetSecretParameters{Value: to.Ptr(s.canary), ContentType: to.Ptr("text/plain"), Tags: map[string]*string{"env": to.Ptr("dev")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := kv.SetSecret(ctx, "alpha", azsecrets.SetSecretParameters{Value: to.Ptr("second")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return kv, r1.ID.Version(), r2.ID.Version()
}

func (s *dataPlaneSuite) setGetLatestAndByVersion(t *testing.T) {
	recordClient(t, "go", "azsecrets SetSecret")
	recordClient(t, "go", "azsecrets GetSecret")
	recordClient(t, "go", "azsecrets GetSecret (version)")
	recordClient(t, "go", "azidentity ClientSecretCredential")
	ctx := context.Background()
	kv := s.e.createVault(t, "rg1", "kv-e2e", nil)
	r1, err := kv.SetSecret(ctx, "alpha", azsecrets.SetSecretParameters{Value: to.Ptr(s.canary), ContentType: to.Ptr("text/plain"), Tags: map[string]*string{"env": to.Ptr("dev")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1 := r1.ID.Version()
	if len(v1) != 32 || r1.ID.Name() != "alpha" || *r1.Value != s.canary {
		t.Fatalf("set returned id %q value ok=%v", *r1.ID, *r1.Value == s.canary)
	}
	if got := string(*r1.ID); got != fmt.Sprintf("https://kv-e2e.vault.localhost:%d/secrets/alpha/%s", s.e.srv.Port, v1) {
		t.Fatalf("id = %s", got)
	}
	if *r1.Attributes.RecoveryLevel != "Recoverable+Purgeable" || *r1.Attributes.RecoverableDays != 90 || !*r1.Attributes.Enabled {
		t.Fatalf("attributes = %+v", r1.Attributes)
	}
	r2, err := kv.SetSecret(ctx, "ALPHA", azsecrets.SetSecretParameters{Value: to.Ptr("second")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v2 := r2.ID.Version()
	if r2.ID.Name() != "alpha" {
		t.Fatalf("name case: a new version keeps the first spelling, got %q", r2.ID.Name())
	}
	latest, err := kv.GetSecret(ctx, "Alpha", "", nil) // trailing-slash form, case-insensitive name
	if err != nil || *latest.Value != "second" || latest.ID.Version() != v2 {
		t.Fatalf("latest = %v, %v", latest.ID, err)
	}
	old, err := kv.GetSecret(ctx, "alpha", v1, nil)
	if err != nil || *old.Value != s.canary || *old.ContentType != "text/plain" || *old.Tags["env"] != "dev" {
		t.Fatalf("by version = %+v, %v", old, err)
	}
}

func (s *dataPlaneSuite) notFound(t *testing.T) {
	ctx := context.Background()
	kv, _, _ := s.seedAlpha(t, "kv-e2e-nf")
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
}

func (s *dataPlaneSuite) updateAttributesAndDisabled(t *testing.T) {
	recordClient(t, "go", "azsecrets UpdateSecretProperties")
	ctx := context.Background()
	kv, v1, v2 := s.seedAlpha(t, "kv-e2e-upd")
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
	if got, err := kv.GetSecret(ctx, "alpha", v1, nil); err != nil || *got.Value != s.canary {
		t.Fatalf("re-enabled get: %v", err)
	}
}

func (s *dataPlaneSuite) versions(t *testing.T) {
	recordClient(t, "go", "azsecrets ListSecretPropertiesVersions")
	ctx := context.Background()
	kv, v1, v2 := s.seedAlpha(t, "kv-e2e-ver")
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
}

func (s *dataPlaneSuite) listPagingOver25(t *testing.T) {
	recordClient(t, "go", "azsecrets ListSecretProperties")
	ctx := context.Background()
	const vault = "kv-e2e-page"
	kv, _, _ := s.seedAlpha(t, vault)
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
	st, _, body := s.e.rawCall(t, "GET", vault, "/secrets?api-version=7.4&maxresults=10", nil, true)
	if st != 200 || len(body["value"].([]any)) != 10 || body["nextLink"] == nil {
		t.Fatalf("maxresults=10: %d %v", st, body["nextLink"])
	}
	next := body["nextLink"].(string)
	if !strings.Contains(next, "api-version=7.4") || !strings.Contains(next, "maxresults=10") {
		t.Fatalf("nextLink %q lacks api-version or maxresults", next)
	}
	for _, bad := range []string{"0", "26", "x"} {
		st, _, body := s.e.rawCall(t, "GET", vault, "/secrets?api-version=7.4&maxresults="+bad, nil, true)
		if st != 400 || errCode(body) != "BadParameter" {
			t.Fatalf("maxresults=%s: %d %s", bad, st, errCode(body))
		}
	}
}

func (s *dataPlaneSuite) badInputIsRejectedWhole(t *testing.T) {
	ctx := context.Background()
	const vault = "kv-e2e-bad"
	kv, _, _ := s.seedAlpha(t, vault)
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
		st, _, m := s.e.rawCall(t, "PUT", vault, "/secrets/alpha?api-version=7.4", []byte(body), true)
		if st != 400 || errCode(m) != "BadParameter" {
			t.Fatalf("body %s: %d %v", body, st, m)
		}
	}
	st, _, m := s.e.rawCall(t, "GET", vault, "/secrets/alpha", nil, true)
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
}

func (s *dataPlaneSuite) authentication(t *testing.T) {
	const vault = "kv-e2e-auth"
	s.e.createVault(t, "rg1", vault, nil)
	st, h, m := s.e.rawCall(t, "PUT", vault, "/secrets/x?api-version=7.4", nil, false)
	if st != 401 || errCode(m) != "Unauthorized" {
		t.Fatalf("unauthenticated: %d %v", st, m)
	}
	wantChallenge := fmt.Sprintf(`Bearer authorization="%s/%s", resource="https://vault.localhost:%d"`, s.e.publicURL, s.e.srv.Admin.TenantID, s.e.srv.Port)
	if got := h.Get("WWW-Authenticate"); got != wantChallenge {
		t.Fatalf("challenge = %q, want %q", got, wantChallenge)
	}
	req, _ := http.NewRequest("GET", s.e.srv.VaultURL(vault)+"secrets/alpha?api-version=7.4", nil)
	req.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
	resp, err := s.e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
}

func (s *dataPlaneSuite) softDeleteRecoverPurge(t *testing.T) {
	for _, op := range []string{"DeleteSecret", "GetDeletedSecret", "ListDeletedSecretProperties", "RecoverDeletedSecret", "PurgeDeletedSecret"} {
		recordClient(t, "go", "azsecrets "+op)
	}
	ctx := context.Background()
	kv := s.e.createVault(t, "rg1", "kv-e2e-del", nil)
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
}

func (s *dataPlaneSuite) backupRestore(t *testing.T) {
	recordClient(t, "go", "azsecrets BackupSecret")
	recordClient(t, "go", "azsecrets RestoreSecret")
	ctx := context.Background()
	kv, v1, v2 := s.seedAlpha(t, "kv-e2e-bak")
	b, err := kv.BackupSecret(ctx, "alpha", nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Value, []byte(s.canary)) {
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
	kv2 := s.e.createVault(t, "rg1", "kv-e2e-restore", nil)
	res, err := kv2.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Value != nil || res.ID.Version() != v2 {
		t.Fatalf("restore = %+v", res)
	}
	for ver, want := range map[string]string{v1: s.canary, v2: "second"} {
		got, err := kv2.GetSecret(ctx, "alpha", ver, nil)
		if err != nil || *got.Value != want {
			t.Fatalf("restored version %s: %v", ver, err)
		}
	}
	// And back into the first vault, whose name for it is free again after the purge.
	if _, err := kv.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil); err != nil {
		t.Fatal(err)
	}
}

func (s *dataPlaneSuite) purgeProtection(t *testing.T) {
	ctx := context.Background()
	pp := s.e.createVault(t, "rg1", "kv-e2e-pp", &armkeyvault.VaultProperties{EnablePurgeProtection: to.Ptr(true), SoftDeleteRetentionInDays: to.Ptr[int32](7)})
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
}

// persistsAcrossRestart writes a secret and purges another, restarts the deployment, and checks
// that the first is there and the second did not come back. Later cases use the new env.
func (s *dataPlaneSuite) persistsAcrossRestart(t *testing.T) {
	ctx := context.Background()
	const vault = "kv-e2e-rst"
	kv, v1, _ := s.seedAlpha(t, vault)
	if _, err := kv.SetSecret(ctx, "gone", azsecrets.SetSecretParameters{Value: to.Ptr("bye")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.DeleteSecret(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PurgeDeletedSecret(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	s.e = s.target.restart(t)
	kv = s.e.srv.Secrets(vault, s.e.cred, s.e.hc)
	got, err := kv.GetSecret(ctx, "alpha", v1, nil)
	if err != nil || *got.Value != s.canary {
		t.Fatalf("after restart: %v", err)
	}
	if _, err := kv.GetDeletedSecret(ctx, "gone", nil); err == nil {
		t.Fatal("purged secret came back after restart")
	}
}

// canaryNeverInPlaintext puts the canary through a write, a read, a backup and a restore, then
// stops every process and scans their output and folders for it (with the whole suite run
// first, that covers every case's writes too).
func (s *dataPlaneSuite) canaryNeverInPlaintext(t *testing.T) {
	ctx := context.Background()
	kv, v1, _ := s.seedAlpha(t, "kv-e2e-can")
	if got, err := kv.GetSecret(ctx, "alpha", v1, nil); err != nil || *got.Value != s.canary {
		t.Fatalf("get: %v", err)
	}
	b, err := kv.BackupSecret(ctx, "alpha", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.DeleteSecret(ctx, "alpha", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PurgeDeletedSecret(ctx, "alpha", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil); err != nil {
		t.Fatal(err)
	}
	sawGet := false
	for _, srv := range s.target.servers {
		srv.Stop()
		if code := srv.ExitCode(); code != 0 {
			t.Fatalf("server exited %d on SIGTERM:\n%s", code, srv.Stderr.String())
		}
		for _, out := range []string{srv.Stdout.String(), srv.Stderr.String()} {
			if strings.Contains(out, s.canary) {
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
			if bytes.Contains(b, []byte(s.canary)) {
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
}
