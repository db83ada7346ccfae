package app

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/issuer"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/sysapi"
)

// compactStore is the store capability purges use to erase freed pages.
type compactStore interface {
	Compact(ctx context.Context) error
}

// build makes the serving state from an unsealed keyring and identity service: the domain
// service, the API handler and the background jobs (purger, compactor). The seal-state machine
// calls it on each unseal and after a snapshot restore (sysapi.Options.Build).
func (s *server) build(ctx context.Context, u sysapi.Unsealed) (*sysapi.Serving, error) {
	kr, ids := u.Keyring, u.Identities
	runCtx, stop := context.WithCancel(context.Background())
	compactNow := make(chan struct{}, 1)
	erase := func() {
		select {
		case compactNow <- struct{}{}:
		default:
		}
	}
	var leads func() bool // one node purges: the leader in a cluster
	if node := clusterNode(s.st); node != nil {
		leads = node.IsLeader
	}
	roles, err := rbac.New(ctx, s.st, kr, rbac.Options{AdminObjectID: ids.AdminObjectID()})
	if err != nil {
		stop()
		return nil, err
	}
	svc, err := service.New(ctx, s.st, kr, service.Options{
		SubscriptionID: ids.SubscriptionID(),
		TenantID:       ids.TenantID(),
		VaultURI: func(name string) string {
			return "https://" + strings.ToLower(name) + "." + s.cfg.DNSSuffix + portSuffix(s.cfg.Listen)
		},
		Authorizer:         roles,
		Roles:              roles,
		GroupsOf:           ids.GroupsOf,                  // transitive groups, from the directory in memory
		PrincipalTypes:     ids.PrincipalType,             // role assignments name principals that exist
		DeleteIdentitiesIn: ids.DeleteManagedIdentitiesIn, // a deleted group takes its identities
		Background:         runCtx,
		// Revocations, key rotations and role changes reach every node.
		KeysApplied: func(ctx context.Context, keys []string) error {
			return errors.Join(ids.KeysApplied(ctx, keys), roles.KeysApplied(ctx, keys))
		},
		Erased:            erase,
		Log:               s.log.With("component", "service"),
		Leads:             leads,
		Rotators:          s.rotators(),
		RotationLimits:    s.rotationLimits(),
		RotationRetryBase: s.cfg.Rotation.RetryBase,
		RotationStepDone:  s.rotationCrashHook(),
		RotationFailed: func(vault, secret, rotationID, step, msg string) {
			if eng := s.alertEngine.Load(); eng != nil {
				eng.RotationFailed(vault, secret, rotationID, step, msg)
			}
		},
	})
	if err != nil {
		stop()
		return nil, err
	}
	unbind := bindStore(s.st, svc, kr) // a cluster store keeps svc's caches current (storage.go)
	unsign := s.signAudit(kr)          // checkpoints signed while unsealed (auditsign.go)
	var storeFailure func() error
	if f, ok := s.st.(interface{ Failure() error }); ok { // the single-node store
		storeFailure = f.Failure
	}
	events := s.startEvents(runCtx, svc, leads)
	recorder, alerts := s.startAlerts(runCtx, svc, s.auditLog())
	pt, err := s.startPortal(runCtx, svc, ids, kr, leads)
	if err != nil {
		unbind()
		unsign()
		stop()
		return nil, err
	}
	handler := s.observe(httpapi.New(httpapi.Config{
		PublicURL: s.cfg.PublicURL, DNSSuffix: s.cfg.DNSSuffix, TenantID: ids.TenantID(), SubscriptionID: ids.SubscriptionID(),
		VaultRequestsPer10s: s.cfg.VaultRequestsPer10s, Seal: s.sys.Seal, Rekey: s.sys.Rekey, MigrateSeal: s.sys.Migrate,
		StoreFailure: storeFailure, TrustedProxies: s.cfg.TrustedProxySet(),
		Events: events, Alerts: alerts, AuditQuery: s.auditQuery(), Metrics: s.metrics, Portal: portalHandler(pt),
	}, svc, ids, issuer.New(ids, s.cfg.PublicURL), recorder, s.log))
	if pt != nil {
		pt.SetAPI(handler) // the portal's actions are requests to the API, audited as such
	}
	go svc.RunPurger(runCtx, s.cfg.PurgeInterval, s.log)
	go svc.RunRotations(runCtx, s.cfg.Rotation.Interval, s.eventClock(), s.log.With("component", "rotation"))
	if cs, ok := s.st.(compactStore); ok {
		go s.runCompactor(runCtx, cs, compactNow)
	}
	return &sysapi.Serving{Handler: handler, AuthorizeMetrics: svc.AuthorizeMetrics, Erase: erase,
		Close: func() { unbind(); stop(); unsign() }}, nil
}

// runCompactor erases freed pages soon after purges, coalescing bursts of purges into one pass.
func (s *server) runCompactor(ctx context.Context, cs compactStore, wake <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.CompactDelay):
		}
		_, replicated := cs.(*cluster.Store) // counted per node as each applies the request
		if err := cs.Compact(ctx); err != nil {
			if !replicated {
				s.metrics.CompactionFailure.Inc()
			}
			s.log.Error("compacting after purge", "err", err)
		} else {
			if !replicated {
				s.metrics.CompactionSuccess.Inc()
			}
			s.log.Info("compacted the store after purge")
		}
	}
}
