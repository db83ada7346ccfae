package service_test

import (
	"testing"

	"github.com/strongroom/strongroom/internal/service"
)

// BenchmarkService_PurgeExpired_NothingDue is the purger's pass over a vault of 5,000 live and
// 5,000 soft-deleted secrets none of which is due: what a server at rest spends per interval.
func BenchmarkService_PurgeExpired_NothingDue(b *testing.B) {
	e := newDueEnv(b)
	mkVault(b, e.svc, e.ctx, "kv-idle", 7, false)
	e.setAndDelete("kv-idle", names("deleted", 5000))
	for _, n := range names("live", 5000) {
		v := "value-" + n
		if _, err := e.svc.SetSecret(e.ctx, "kv-idle", n, service.SecretInput{Value: &v}); err != nil {
			b.Fatal(err)
		}
	}
	e.purge(0, 0) // the one-time backfill check
	e.st.reset()
	for b.Loop() {
		e.purge(0, 0)
	}
	gets, scans, visits := e.st.counts()
	b.ReportMetric(float64(gets)/float64(b.N), "gets/op")
	b.ReportMetric(float64(scans)/float64(b.N), "scans/op")
	b.ReportMetric(float64(visits)/float64(b.N), "keys/op")
}

// BenchmarkService_ListSecrets_Page is a first page (25) of a vault of 10,000 secrets, on the
// bbolt file.
func BenchmarkService_ListSecrets_Page(b *testing.B) {
	e := newDueEnv(b)
	mkVault(b, e.svc, e.ctx, "kv-page", 7, false)
	for _, n := range names("s", 10000) {
		v := "value-" + n
		if _, err := e.svc.SetSecret(e.ctx, "kv-page", n, service.SecretInput{Value: &v}); err != nil {
			b.Fatal(err)
		}
	}
	e.st.reset()
	for b.Loop() {
		if p, err := e.svc.ListSecrets(e.ctx, "kv-page", 25, ""); err != nil || len(p.Items) != 25 {
			b.Fatal(len(p.Items), err)
		}
	}
	gets, scans, visits := e.st.counts()
	b.ReportMetric(float64(gets)/float64(b.N), "gets/op")
	b.ReportMetric(float64(scans)/float64(b.N), "scans/op")
	b.ReportMetric(float64(visits)/float64(b.N), "keys/op")
}

// BenchmarkService_ListDeletedSecrets_Page is a page (25) of the 100 deleted secrets of a vault
// that also holds 10,000 live ones whose names sort first, once the deleted-secrets index is
// backfilled.
func BenchmarkService_ListDeletedSecrets_Page(b *testing.B) {
	e := newDueEnv(b)
	mkVault(b, e.svc, e.ctx, "kv-page", 7, false)
	for _, n := range names("alive", 10000) {
		v := "value-" + n
		if _, err := e.svc.SetSecret(e.ctx, "kv-page", n, service.SecretInput{Value: &v}); err != nil {
			b.Fatal(err)
		}
	}
	e.setAndDelete("kv-page", names("gone", 100))
	e.purge(0, 0) // the backfill marker
	e.st.reset()
	for b.Loop() {
		if p, err := e.svc.ListDeletedSecrets(e.ctx, "kv-page", 25, ""); err != nil || len(p.Items) != 25 {
			b.Fatal(len(p.Items), err)
		}
	}
	gets, scans, visits := e.st.counts()
	b.ReportMetric(float64(gets)/float64(b.N), "gets/op")
	b.ReportMetric(float64(scans)/float64(b.N), "scans/op")
	b.ReportMetric(float64(visits)/float64(b.N), "keys/op")
}
