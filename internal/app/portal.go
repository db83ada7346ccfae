package app

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/portal"
	"github.com/strongroom/strongroom/internal/service"
)

// startPortal builds the web portal for one serving state (nil when portal.disabled), with
// its session sweeper on runCtx. The caller hands it the API handler once that exists
// (Portal.SetAPI): the portal's actions are requests to it.
func (s *server) startPortal(runCtx context.Context, svc *service.Service, ids *identity.Service, kr *keyring.Keyring, leads func() bool) (*portal.Portal, error) {
	if s.cfg.Portal.Disabled {
		return nil, nil
	}
	p, err := portal.New(portal.Options{
		PublicURL: s.cfg.PublicURL, TenantID: ids.TenantID(), SubscriptionID: ids.SubscriptionID(),
		VaultURI: func(name string) string {
			return "https://" + strings.ToLower(name) + "." + s.cfg.DNSSuffix + portSuffix(s.cfg.Listen)
		},
		Store: s.st, Keyring: kr, Apps: ids, Permits: svc.Permits, Config: s.cfg.Portal,
		Log: s.log.With("component", "portal"),
	})
	if err != nil {
		return nil, err
	}
	go p.RunSweeper(runCtx, 5*time.Minute, leads)
	return p, nil
}

// portalHandler is p as the API edge's Portal option (nil stays nil).
func portalHandler(p *portal.Portal) http.Handler {
	if p == nil {
		return nil
	}
	return p
}
