package test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/testenv"
)

// TestPortal_ClusterFollower: a person signs in and creates a secret through the portal on a
// follower (every node serves the same public URL, so the issuer's redirect to
// <public_url>/portal/callback lands on whichever node the name leads to: here the follower);
// the session survives a restart of that node and a change of leader, since sessions are
// sealed records of the replicated store and not the memory of any node.
func TestPortal_ClusterFollower(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	follower := c.Follower()
	pe := portalEnvOf(t, clusterEnv(t, c, follower))
	alice := pe.user(t, "alice@contoso.com", "Passw0rd!!")
	pe.assign(t, pe.sub(), roleContributor, alice)
	pe.assign(t, pe.sub(), roleSecretsOfficr, alice)
	admin := pe.createVault(t, "rg-portal-ha", "portalha", nil)

	jar, _ := cookiejar.New(nil)
	hc := c.HTTPClient()
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	b := &browser{t: t, hc: hc, origin: follower.URL}
	cb := b.authorize("alice@contoso.com", "Passw0rd!!")
	if !strings.HasPrefix(cb, c.PublicURL+"/portal/callback?") {
		t.Fatalf("the issuer redirects to %s, want the public URL's callback", cb)
	}
	resp, page := b.do("GET", follower.URL+strings.TrimPrefix(cb, c.PublicURL), nil, nil)
	if resp.StatusCode != http.StatusSeeOther || !hasSession(resp) {
		t.Fatalf("the callback on the follower = %d: %s", resp.StatusCode, snippet(page))
	}
	create := func(name, value string) {
		t.Helper()
		resp, page := b.do("POST", "/portal/vaults/portalha/secrets/new", url.Values{"name": {name}, "value": {value}, "enabled": {"yes"}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("creating %s through the follower's portal = %d: %s", name, resp.StatusCode, snippet(page))
		}
		got, err := admin.GetSecret(context.Background(), name, "", nil)
		if err != nil || got.Value == nil || *got.Value != value {
			t.Fatalf("the secret %s created through the portal: %v", name, err)
		}
	}
	create("through-follower", "v1")
	resp, page = b.do("GET", "/portal/vaults/portalha/secrets", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "through-follower") {
		t.Fatalf("the secrets blade on the follower = %d: %s", resp.StatusCode, snippet(page))
	}
	t.Logf("portal pages on %s were executed by node %s", follower.URL, resp.Header.Get(cluster.HeaderServedBy))

	// The same cookie after the follower restarts.
	follower.Restart()
	c.WaitVoters(len(c.Nodes))
	waitPortal := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, page := b.do("GET", "/portal/vaults/portalha/secrets", nil, nil)
			if resp.StatusCode == 200 && strings.Contains(page, "through-follower") {
				return
			}
			if resp.StatusCode == http.StatusFound || time.Now().After(deadline) {
				t.Fatalf("%s: the session's page = %d %s: %s", what, resp.StatusCode, resp.Header.Get("Location"), snippet(page))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitPortal("after the follower restarted")
	create("after-restart", "v2")

	// And under a new leader (the follower keeps serving the portal).
	leader := c.Leader(10 * time.Second)
	if leader != follower {
		leader.Stop()
		c.Leader(15 * time.Second)
		t.Logf("stopped the leader %s", leader.URL)
		waitPortal("after the leader stopped")
		create("new-leader", "v3")
	}
}
