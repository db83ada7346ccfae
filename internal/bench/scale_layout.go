package bench

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
)

// layout places the scale run's secrets: global index i lives in vault i/perVault under the
// name secretName(i%perVault), so the first secrets written fill the first vaults completely
// and the small point's vaults are the same, complete vaults at N.
type layout struct {
	prefix   string // the vault name (one vault) or the names' prefix
	vaults   int
	perVault int
	suffix   string // DNS suffix
	port     int
	query    string // "api-version=…"
}

func newLayout(cfg ScaleConfig, port int) layout {
	return layout{prefix: cfg.Vault, vaults: cfg.Vaults, perVault: cfg.Secrets / cfg.Vaults,
		suffix: cfg.DNSSuffix, port: port, query: "api-version=" + url.QueryEscape(cfg.APIVersion)}
}

// vaultName is the name of vault v: the prefix alone for one vault, else prefix-v.
func (l layout) vaultName(v int) string {
	if l.vaults == 1 {
		return l.prefix
	}
	return l.prefix + "-" + strconv.Itoa(v)
}

// host is vault v's data-plane host with the port.
func (l layout) host(v int) string {
	return l.vaultName(v) + "." + l.suffix + ":" + strconv.Itoa(l.port)
}

// vaultsFor returns how many vaults hold the first n secrets.
func (l layout) vaultsFor(n int) int { return (n + l.perVault - 1) / l.perVault }

// place is target.place: the Host header of secret i's vault, and a URL whose host is vault 0's.
// Every request of a worker then goes over its one connection whatever the vault (the server
// routes by the Host header, as a reverse proxy in front of it would see it), so a run over
// 10,000 vaults measures the server and not 10,000 TLS handshakes per worker.
func (l layout) place(i int, write bool) (string, *url.URL) {
	path := "/secrets/" + secretName(i%l.perVault)
	if !write {
		path += "/"
	}
	return l.host(i / l.perVault), &url.URL{Scheme: "https", Host: l.host(0), Path: path, RawQuery: l.query}
}

// newScaleTarget is the data-plane target of the scale run.
func newScaleTarget(l layout, token string, valueSize int) (*target, error) {
	t := &target{host: l.host(0), base: "https://" + l.host(0), auth: "Bearer " + token, place: l.place}
	t.value = strings.Repeat("v", valueSize)
	body, err := json.Marshal(map[string]string{"value": t.value})
	if err != nil {
		return nil, err
	}
	t.body = body
	return t, nil
}
