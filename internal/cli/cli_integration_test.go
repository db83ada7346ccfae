package cli

// End-to-end test: the real binary's CLI against the real binary's server, over HTTPS, through
// the Azure SDKs. testenv builds ./cmd/strongroom and starts `strongroom server` on a loopback
// port the server picks; the test runs the seed example word for word before the round
// trips.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/testenv"
)

// seedExample is the seed example, verbatim. Only the placeholders and the port are
// substituted; the commands run from the directory holding strongroom-data.
const seedExample = `
strongroom login --server https://localhost:8443 --ca-file strongroom-data/tls/ca.pem \
    --service-principal --username <clientId> --password <clientSecret> --tenant <tenantId>
strongroom group create --name myResourceGroup --location eastus
strongroom keyvault create --name myKeyVault --resource-group myResourceGroup --location eastus
strongroom keyvault secret set --vault-name myKeyVault --name mySecret --value "mySecretValue"
strongroom keyvault secret show --vault-name myKeyVault --name mySecret
strongroom keyvault secret show --vault-name myKeyVault --name mySecret --query value --output tsv   # prints mySecretValue
`

// adminFile is <data-dir>/admin.json as the server writes it (testenv reads it).
type adminFile = testenv.Admin

// harness runs the built binary against one server.
type harness struct {
	bin     string
	workDir string // holds strongroom-data, the cwd of every CLI run
	port    int
	env     []string
	admin   adminFile
	// secrets are values that must never show up on stderr.
	secrets []string
}

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

func TestCLIIntegration(t *testing.T) {
	h := startHarness(t)

	t.Run("seed example word for word", func(t *testing.T) {
		cmds := shellCommands(t, seedExample)
		if len(cmds) != 6 {
			t.Fatalf("parsed %d seed commands, want 6", len(cmds))
		}
		var outs []string
		for _, args := range cmds {
			if args[0] != "strongroom" {
				t.Fatalf("seed command %q does not start with strongroom", args)
			}
			outs = append(outs, h.ok(t, h.substitute(args[1:])...))
		}
		var accounts []map[string]any
		decode(t, outs[0], &accounts)
		if len(accounts) != 1 || accounts[0]["id"] != h.admin.SubscriptionID || accounts[0]["isDefault"] != true ||
			accounts[0]["tenantId"] != h.admin.TenantID || accounts[0]["cloudName"] == nil {
			t.Errorf("login printed %v, want the admin subscription as az prints it", accounts)
		}
		if user, _ := accounts[0]["user"].(map[string]any); user["name"] != h.admin.ClientID || user["type"] != "servicePrincipal" {
			t.Errorf("login user = %v", accounts[0]["user"])
		}
		if strings.Contains(outs[0], h.admin.ClientSecret) {
			t.Error("login printed the client secret")
		}
		var rg map[string]any
		decode(t, outs[1], &rg)
		if rg["name"] != "myResourceGroup" || rg["location"] != "eastus" {
			t.Errorf("group create printed %v", rg)
		}
		var vault struct {
			Name          string `json:"name"`
			ResourceGroup string `json:"resourceGroup"`
			Properties    struct {
				VaultURI         string `json:"vaultUri"`
				EnableSoftDelete bool   `json:"enableSoftDelete"`
				Retention        int    `json:"softDeleteRetentionInDays"`
				AccessPolicies   []any  `json:"accessPolicies"`
				RBAC             bool   `json:"enableRbacAuthorization"`
			} `json:"properties"`
		}
		decode(t, outs[2], &vault)
		wantURI := fmt.Sprintf("https://mykeyvault.vault.localhost:%d/", h.port)
		if vault.Name != "myKeyVault" || vault.ResourceGroup != "myResourceGroup" || vault.Properties.VaultURI != wantURI ||
			!vault.Properties.EnableSoftDelete || vault.Properties.Retention != 90 || !vault.Properties.RBAC || len(vault.Properties.AccessPolicies) != 0 {
			t.Errorf("keyvault create printed %+v, want vaultUri %s, soft delete 90 days, RBAC and no access policy (az since 2.61)", vault, wantURI)
		}
		for i, out := range outs[3:5] {
			sec := decodeMap(t, out)
			if sec["value"] != "mySecretValue" || sec["name"] != "mySecret" || sec["tags"] != nil || sec["contentType"] != nil {
				t.Errorf("seed command %d printed %v", i+4, sec)
			}
			checkSecretShape(t, sec, true)
		}
		if outs[5] != "mySecretValue\n" {
			t.Errorf("--query value --output tsv printed %q, want %q", outs[5], "mySecretValue\n")
		}
	})

	t.Run("profile is private", func(t *testing.T) {
		dir := strings.TrimPrefix(h.env[0], configDirEnv+"=")
		for path, mode := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, profileFile): 0o600} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Errorf("stat %s: %v", path, err)
			} else if fi.Mode().Perm() != mode {
				t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), mode)
			}
		}
		acc := decodeMap(t, h.ok(t, "account", "show"))
		if acc["id"] != h.admin.SubscriptionID || acc["tenantId"] != h.admin.TenantID {
			t.Errorf("account show = %v", acc)
		}
	})

	t.Run("errors", func(t *testing.T) {
		r := h.fail(t, "keyvault", "secret", "show", "--vault-name", "myKeyVault", "--name", "doesNotExist")
		if !strings.Contains(r.stderr, "SecretNotFound") || !strings.Contains(r.stderr, "not found") {
			t.Errorf("missing secret: stderr %q, want SecretNotFound", r.stderr)
		}
		r = h.fail(t, "keyvault", "secret", "list", "--vault-name", "noSuchVault")
		if !strings.Contains(r.stderr, "not found") {
			t.Errorf("missing vault: stderr %q", r.stderr)
		}
		r = h.fail(t, "keyvault", "create", "--name", "myKeyVault", "--resource-group", "myResourceGroup", "--location", "eastus")
		if !strings.Contains(r.stderr, "already exists") {
			t.Errorf("existing vault: stderr %q", r.stderr)
		}
		r = h.fail(t, "keyvault", "show", "--name", "noSuchVault")
		if r.code != exitNotFound {
			t.Errorf("missing vault show: exit %d, want %d", r.code, exitNotFound)
		}
		h.fail(t, "group", "show", "--name", "noSuchGroup")
		h.fail(t, "keyvault", "secret", "show-deleted", "--vault-name", "myKeyVault", "--name", "mySecret")
	})

	t.Run("secret round trips", func(t *testing.T) { h.secretRoundTrips(t) })
	t.Run("secret rotation", func(t *testing.T) { h.secretRotation(t) })
	t.Run("output formats", func(t *testing.T) { h.outputFormats(t) })
	t.Run("group and vault lifecycle", func(t *testing.T) { h.vaultLifecycle(t) })
	t.Run("keyvault hosts", func(t *testing.T) {
		out := h.ok(t, "keyvault", "hosts") // the vaults the account lists, through armkeyvault
		if !strings.Contains(out, "127.0.0.1 mykeyvault.vault.localhost\n") {
			t.Errorf("keyvault hosts printed %q, want a line for myKeyVault", out)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if f := strings.Fields(line); len(f) != 2 || f[0] != "127.0.0.1" || !strings.HasSuffix(f[1], ".vault.localhost") {
				t.Errorf("not a hosts line for a vault: %q", line)
			}
		}
		if out := h.ok(t, "keyvault", "hosts", "--vault-name", "Other-KV"); out != "127.0.0.1 other-kv.vault.localhost\n" {
			t.Errorf("keyvault hosts --vault-name printed %q", out)
		}
	})

	t.Run("logout", func(t *testing.T) {
		h.ok(t, "logout")
		r := h.fail(t, "account", "show")
		if !strings.Contains(r.stderr, "strongroom login") {
			t.Errorf("after logout: stderr %q", r.stderr)
		}
	})
}

func (h *harness) secretRoundTrips(t *testing.T) {
	kv := []string{"--vault-name", "myKeyVault"}
	first := decodeMap(t, h.ok(t, "keyvault", "secret", "show", kv[0], kv[1], "--name", "mySecret"))
	firstID, _ := first["id"].(string)

	h.secrets = append(h.secrets, "secondValue")
	second := decodeMap(t, h.ok(t, "keyvault", "secret", "set", kv[0], kv[1], "-n", "mySecret", "--value", "secondValue",
		"--tags", "env=test", "owner", "--content-type", "text/plain",
		"--expires", "2099-12-31T23:59:59Z", "--not-before", "2020-01-01T00:00:00Z"))
	attrs, _ := second["attributes"].(map[string]any)
	if second["contentType"] != "text/plain" || attrs["expires"] != "2099-12-31T23:59:59+00:00" || attrs["notBefore"] != "2020-01-01T00:00:00+00:00" {
		t.Errorf("secret set with attributes printed %v", second)
	}
	if tags, _ := second["tags"].(map[string]any); tags["env"] != "test" || tags["owner"] != "" {
		t.Errorf("secret set tags = %v, want env=test owner=", second["tags"])
	}
	secondID, _ := second["id"].(string)

	var list []map[string]any
	decode(t, h.ok(t, "keyvault", "secret", "list", kv[0], kv[1]), &list)
	if len(list) != 1 || list[0]["name"] != "mySecret" {
		t.Fatalf("secret list = %v, want mySecret only", list)
	}
	if _, hasValue := list[0]["value"]; hasValue {
		t.Errorf("secret list item has a value: %v", list[0])
	}
	checkSecretShape(t, list[0], false)

	var versions []map[string]any
	decode(t, h.ok(t, "keyvault", "secret", "list-versions", kv[0], kv[1], "--name", "mySecret"), &versions)
	if len(versions) != 2 {
		t.Errorf("list-versions returned %d versions, want 2", len(versions))
	}
	// Older versions stay readable by id.
	if got := h.ok(t, "keyvault", "secret", "show", "--id", firstID, "--query", "value", "-o", "tsv"); got != "mySecretValue\n" {
		t.Errorf("show --id %s = %q", firstID, got)
	}

	// set-attributes on the latest version through --id, then back.
	upd := decodeMap(t, h.ok(t, "keyvault", "secret", "set-attributes", "--id", secondID, "--enabled", "false"))
	if a, _ := upd["attributes"].(map[string]any); a["enabled"] != false {
		t.Errorf("set-attributes --enabled false printed %v", upd)
	}
	if tags, _ := upd["tags"].(map[string]any); tags["env"] != "test" {
		t.Errorf("set-attributes changed the tags: %v", upd["tags"])
	}
	h.fail(t, "keyvault", "secret", "show", kv[0], kv[1], "--name", "mySecret")
	upd = decodeMap(t, h.ok(t, "keyvault", "secret", "set-attributes", kv[0], kv[1], "--name", "mySecret",
		"--version", versionOf(secondID), "--enabled", "true", "--tags", "env=prod", "--content-type", "application/json"))
	if a, _ := upd["attributes"].(map[string]any); a["enabled"] != true || upd["contentType"] != "application/json" {
		t.Errorf("set-attributes --enabled true printed %v", upd)
	}
	if tags, _ := upd["tags"].(map[string]any); len(tags) != 1 || tags["env"] != "prod" {
		t.Errorf("set-attributes --tags env=prod gave tags %v", upd["tags"])
	}

	// --file with each encoding, and download undoing it.
	dir := t.TempDir()
	binary := []byte{0, 1, 2, 0xfe, 0xff, '\n'}
	src := filepath.Join(dir, "blob.bin")
	writeFile(t, src, binary)
	for _, enc := range []string{"base64", "hex"} {
		name := "file-" + enc
		sec := decodeMap(t, h.ok(t, "keyvault", "secret", "set", kv[0], kv[1], "--name", name, "--file", src, "--encoding", enc))
		if tags, _ := sec["tags"].(map[string]any); tags["file-encoding"] != enc {
			t.Errorf("set --file --encoding %s: tags %v", enc, sec["tags"])
		}
		out := filepath.Join(dir, name+".out")
		h.ok(t, "keyvault", "secret", "download", kv[0], kv[1], "--name", name, "--file", out)
		if got, _ := os.ReadFile(out); !bytes.Equal(got, binary) {
			t.Errorf("download of %s = %v, want %v", name, got, binary)
		}
	}
	text := filepath.Join(dir, "text.txt")
	writeFile(t, text, []byte("line one\r\nline two\n"))
	sec := decodeMap(t, h.ok(t, "keyvault", "secret", "set", kv[0], kv[1], "--name", "file-text", "--file", text))
	if sec["value"] != "line one\nline two\n" {
		t.Errorf("set --file (utf-8) value %q", sec["value"])
	}
	if tags, _ := sec["tags"].(map[string]any); tags["file-encoding"] != "utf-8" {
		t.Errorf("set --file (utf-8) tags %v", sec["tags"])
	}

	// backup, delete, recover, delete, purge, restore.
	blob := filepath.Join(dir, "mySecret.blob")
	h.ok(t, "keyvault", "secret", "backup", kv[0], kv[1], "--name", "mySecret", "--file", blob)
	if fi, err := os.Stat(blob); err != nil || fi.Size() == 0 {
		t.Fatalf("backup file: %v", err)
	}
	del := decodeMap(t, h.ok(t, "keyvault", "secret", "delete", kv[0], kv[1], "--name", "mySecret"))
	wantRecoveryID := fmt.Sprintf("https://mykeyvault.vault.localhost:%d/deletedsecrets/mySecret", h.port)
	if del["recoveryId"] != wantRecoveryID || del["deletedDate"] == nil || del["scheduledPurgeDate"] == nil || del["name"] != "mySecret" {
		t.Errorf("secret delete printed %v", del)
	}
	if del["value"] != nil {
		t.Errorf("secret delete printed a value")
	}
	h.fail(t, "keyvault", "secret", "show", kv[0], kv[1], "--name", "mySecret")
	if got := h.ok(t, "keyvault", "secret", "list-deleted", kv[0], kv[1], "--query", "[].name", "-o", "tsv"); got != "mySecret\n" {
		t.Errorf("list-deleted names = %q", got)
	}
	shown := decodeMap(t, h.ok(t, "keyvault", "secret", "show-deleted", "--id", wantRecoveryID))
	if shown["recoveryId"] != wantRecoveryID || shown["name"] != "mySecret" {
		t.Errorf("show-deleted printed %v", shown)
	}
	rec := decodeMap(t, h.ok(t, "keyvault", "secret", "recover", kv[0], kv[1], "--name", "mySecret"))
	if rec["name"] != "mySecret" {
		t.Errorf("recover printed %v", rec)
	}
	waitFor(t, "recovered secret to be readable", func() bool {
		return h.run("keyvault", "secret", "show", kv[0], kv[1], "--name", "mySecret").code == 0
	})
	if got := h.ok(t, "keyvault", "secret", "show", kv[0], kv[1], "--name", "mySecret", "--query", "value", "-o", "tsv"); got != "secondValue\n" {
		t.Errorf("recovered value = %q", got)
	}
	h.ok(t, "keyvault", "secret", "delete", kv[0], kv[1], "--name", "mySecret", "-o", "none")
	if out := h.ok(t, "keyvault", "secret", "purge", kv[0], kv[1], "--name", "mySecret"); out != "" {
		t.Errorf("purge printed %q", out)
	}
	h.fail(t, "keyvault", "secret", "show-deleted", kv[0], kv[1], "--name", "mySecret")
	restored := decodeMap(t, h.ok(t, "keyvault", "secret", "restore", kv[0], kv[1], "--file", blob))
	if restored["name"] != "mySecret" {
		t.Errorf("restore printed %v", restored)
	}
	decode(t, h.ok(t, "keyvault", "secret", "list-versions", "--vault-name", "myKeyVault", "--name", "mySecret"), &versions)
	if len(versions) != 2 {
		t.Errorf("after restore: %d versions, want 2", len(versions))
	}
	if got := h.ok(t, "keyvault", "secret", "show", kv[0], kv[1], "--name", "mySecret", "--query", "value", "-o", "tsv"); got != "secondValue\n" {
		t.Errorf("restored value = %q", got)
	}
}

// secretRotation drives the rotation verbs: show the default policy, update from a file, rotate
// (the new version, without its value), status; a bad policy fails with the field named.
func (h *harness) secretRotation(t *testing.T) {
	kv := []string{"--vault-name", "myKeyVault", "--name", "rotated"}
	h.ok(t, append([]string{"keyvault", "secret", "set", "--value", "before-rotation"}, kv...)...)
	def := decodeMap(t, h.ok(t, append([]string{"keyvault", "secret", "rotation-policy", "show"}, kv...)...))
	if def["id"] != nil || !strings.Contains(fmt.Sprint(def["lifetimeActions"]), "P30D") {
		t.Errorf("default policy: %v", def)
	}
	file := filepath.Join(t.TempDir(), "policy.json")
	writeFile(t, file, []byte(`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],`+
		`"attributes":{"expiryTime":"P1Y"},"rotator":{"kind":"generate","generator":{"length":20}}}`))
	put := decodeMap(t, h.ok(t, append([]string{"keyvault", "secret", "rotation-policy", "update", "--value", "@" + file}, kv...)...))
	if !strings.HasSuffix(fmt.Sprint(put["id"]), "/secrets/rotated/rotationpolicy") {
		t.Errorf("update printed %v", put)
	}
	out := h.ok(t, append([]string{"keyvault", "secret", "rotate"}, kv...)...)
	rotated := decodeMap(t, out)
	if rotated["value"] != nil || strings.Contains(out, "before-rotation") || rotated["name"] != "rotated" {
		t.Errorf("rotate printed %v", rotated)
	}
	sec := decodeMap(t, h.ok(t, append([]string{"keyvault", "secret", "show"}, kv...)...))
	if v, _ := sec["value"].(string); len(v) != 20 || sec["id"] != rotated["id"] {
		t.Errorf("latest after rotate: %v", sec["id"])
	}
	st := decodeMap(t, h.ok(t, append([]string{"keyvault", "secret", "rotation-status"}, kv...)...))
	if st["state"] != "idle" || st["lastOutcome"] != "succeeded" {
		t.Errorf("rotation-status printed %v", st)
	}
	r := h.fail(t, append([]string{"keyvault", "secret", "rotation-policy", "update", "--value", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"3M"},"action":{"type":"Rotate"}}]}`}, kv...)...)
	if !strings.Contains(r.stderr, "BadParameter") || !strings.Contains(r.stderr, "timeAfterCreate") {
		t.Errorf("bad policy: stderr %q", r.stderr)
	}
	h.ok(t, append([]string{"keyvault", "secret", "delete"}, kv...)...) // the later subtests list the vault
	h.ok(t, append([]string{"keyvault", "secret", "purge"}, kv...)...)
}

func (h *harness) outputFormats(t *testing.T) {
	kv := []string{"keyvault", "secret", "list", "--vault-name", "myKeyVault"}
	table := h.ok(t, append(kv, "-o", "table")...)
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) < 3 || !strings.Contains(lines[0], "Name") ||
		!strings.HasPrefix(lines[1], "---") || !strings.Contains(table, "mySecret") {
		t.Errorf("table output:\n%s", table)
	}
	if yml := h.ok(t, append(kv, "-o", "yaml")...); !strings.Contains(yml, "name: mySecret") {
		t.Errorf("yaml output:\n%s", yml)
	}
	names := h.ok(t, append(kv, "--query", "sort([].name)", "-o", "tsv")...)
	if names != "file-base64\nfile-hex\nfile-text\nmySecret\n" {
		t.Errorf("--query names = %q", names)
	}
	rows := h.ok(t, append(kv, "--query", "[?name=='mySecret'].{n:name, e:attributes.enabled}", "-o", "tsv")...)
	if rows != "mySecret\tTrue\n" {
		t.Errorf("--query multiselect tsv = %q, want the hash's column order", rows)
	}
	if out := h.ok(t, append(kv, "-o", "none")...); out != "" {
		t.Errorf("-o none printed %q", out)
	}
	if out := h.ok(t, append(kv, "--query", "[0].name", "-o", "json")...); !strings.HasPrefix(out, "\"") {
		t.Errorf("--query scalar json = %q", out)
	}
}

func (h *harness) vaultLifecycle(t *testing.T) {
	var groups []map[string]any
	decode(t, h.ok(t, "group", "list"), &groups)
	if !hasName(groups, "myResourceGroup") {
		t.Errorf("group list = %v", groups)
	}
	if g := decodeMap(t, h.ok(t, "group", "show", "-n", "myResourceGroup")); g["location"] != "eastus" {
		t.Errorf("group show = %v", g)
	}
	var vaults []map[string]any
	decode(t, h.ok(t, "keyvault", "list"), &vaults)
	if !hasName(vaults, "myKeyVault") {
		t.Errorf("keyvault list = %v", vaults)
	}
	decode(t, h.ok(t, "keyvault", "list", "-g", "myResourceGroup"), &vaults)
	if !hasName(vaults, "myKeyVault") {
		t.Errorf("keyvault list -g = %v", vaults)
	}
	// show/update find the resource group by themselves, as az does.
	if v := decodeMap(t, h.ok(t, "keyvault", "show", "--name", "myKeyVault")); v["resourceGroup"] != "myResourceGroup" {
		t.Errorf("keyvault show = %v", v)
	}
	upd := decodeMap(t, h.ok(t, "keyvault", "update", "--name", "myKeyVault", "--tags", "env=test"))
	if tags, _ := upd["tags"].(map[string]any); tags["env"] != "test" {
		t.Errorf("keyvault update --tags printed %v", upd)
	}

	h.ok(t, "group", "create", "-n", "otherGroup", "-l", "westeurope", "--tags", "team=sec", "-o", "none")
	created := decodeMap(t, h.ok(t, "keyvault", "create", "-n", "otherVault", "-g", "otherGroup",
		"--retention-days", "7", "--enable-rbac-authorization", "--enable-purge-protection", "false"))
	props, _ := created["properties"].(map[string]any)
	if created["location"] != "westeurope" || props["softDeleteRetentionInDays"] != 7.0 || props["enableRbacAuthorization"] != true {
		t.Errorf("keyvault create (rbac, 7 days) printed %v", created)
	}
	if out := h.ok(t, "keyvault", "delete", "-n", "otherVault"); out != "" {
		t.Errorf("keyvault delete printed %q", out)
	}
	h.fail(t, "keyvault", "show", "-n", "otherVault")
	var deleted []map[string]any
	decode(t, h.ok(t, "keyvault", "list-deleted"), &deleted)
	if !hasName(deleted, "otherVault") {
		t.Errorf("keyvault list-deleted = %v", deleted)
	}
	dv := decodeMap(t, h.ok(t, "keyvault", "show-deleted", "-n", "otherVault"))
	if p, _ := dv["properties"].(map[string]any); p["location"] != "westeurope" {
		t.Errorf("keyvault show-deleted = %v", dv)
	}
	rec := decodeMap(t, h.ok(t, "keyvault", "recover", "-n", "otherVault"))
	if rec["name"] != "otherVault" || rec["resourceGroup"] != "otherGroup" {
		t.Errorf("keyvault recover printed %v", rec)
	}
	h.ok(t, "keyvault", "show", "-n", "otherVault", "-o", "none")
	h.ok(t, "keyvault", "delete", "-n", "otherVault", "-g", "otherGroup")
	if out := h.ok(t, "keyvault", "purge", "-n", "otherVault", "-l", "westeurope"); out != "" {
		t.Errorf("keyvault purge printed %q", out)
	}
	decode(t, h.ok(t, "keyvault", "list-deleted"), &deleted)
	if hasName(deleted, "otherVault") {
		t.Errorf("purged vault still listed: %v", deleted)
	}
	h.fail(t, "keyvault", "recover", "-n", "otherVault")

	if got := h.ok(t, "group", "exists", "-n", "otherGroup"); got != "true\n" {
		t.Errorf("group exists = %q", got)
	}
	h.fail(t, "group", "delete", "-n", "otherGroup") // no tty and no --yes
	h.ok(t, "group", "delete", "-n", "otherGroup", "--yes")
	if got := h.ok(t, "group", "exists", "-n", "otherGroup"); got != "false\n" {
		t.Errorf("group exists after delete = %q", got)
	}
	if r := h.fail(t, "group", "show", "-n", "otherGroup"); !strings.Contains(r.stderr, "not found") {
		t.Errorf("deleted group show: %q", r.stderr)
	}
}

// checkSecretShape checks az's secret keys are all present (null or not).
func checkSecretShape(t *testing.T, sec map[string]any, full bool) {
	t.Helper()
	keys := []string{"attributes", "contentType", "id", "managed", "name", "tags"}
	if full {
		keys = append(keys, "kid", "value")
	}
	for _, k := range keys {
		if _, ok := sec[k]; !ok {
			t.Errorf("secret output lacks %q: %v", k, sec)
		}
	}
	attrs, _ := sec["attributes"].(map[string]any)
	for _, k := range []string{"created", "enabled", "expires", "notBefore", "recoverableDays", "recoveryLevel", "updated"} {
		if _, ok := attrs[k]; !ok {
			t.Errorf("secret attributes lack %q: %v", k, attrs)
		}
	}
	if c, _ := attrs["created"].(string); !strings.HasSuffix(c, "+00:00") {
		t.Errorf("attributes.created = %q, want an ISO-8601 time ending in +00:00", c)
	}
}

// startHarness starts the server through testenv (the built binary, a port the server binds
// itself, a healthy /health) with its data folder at <work>/strongroom-data, where the seed
// example expects it.
func startHarness(t *testing.T) *harness {
	t.Helper()
	work := t.TempDir()
	srv := testenv.Start(t, &testenv.Options{DataDir: filepath.Join(work, "strongroom-data")})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log (secrets redacted):\n%s", redactedLog(srv.Stdout.String()+srv.Stderr.String()))
		}
	})
	h := &harness{workDir: work, bin: testenv.Binary(t), port: srv.Port, admin: srv.Admin}
	if h.admin.ClientSecret == "" {
		t.Fatal("the server wrote no bootstrap credential")
	}
	h.secrets = []string{h.admin.ClientSecret, "mySecretValue"}
	h.env = []string{configDirEnv + "=" + filepath.Join(work, "cli-config")}
	return h
}

// redactedLog returns the server log without lines carrying credentials.
func redactedLog(raw string) string {
	var keep []string
	for _, l := range strings.Split(raw, "\n") {
		if strings.Contains(strings.ToLower(l), "secret") {
			l = "[line redacted]"
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// run executes the CLI from the work directory with the harness's config dir.
func (h *harness) run(args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Dir = h.workDir
	cmd.Env = append(os.Environ(), h.env...)
	cmd.Stdin = nil // /dev/null: no tty, as in CI
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		stderr.WriteString(err.Error())
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ok runs a command that must succeed and returns its stdout.
func (h *harness) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := h.run(args...)
	h.checkStderr(t, args, r)
	if r.code != 0 {
		t.Fatalf("strongroom %s: exit %d, stderr %q", h.redact(args), r.code, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("strongroom %s: unexpected stderr %q", h.redact(args), r.stderr)
	}
	return r.stdout
}

// fail runs a command that must fail with one line on stderr and nothing on stdout.
func (h *harness) fail(t *testing.T, args ...string) result {
	t.Helper()
	r := h.run(args...)
	h.checkStderr(t, args, r)
	if r.code == 0 {
		t.Fatalf("strongroom %s succeeded, want failure; stdout %q", h.redact(args), r.stdout)
	}
	if r.stdout != "" {
		t.Errorf("strongroom %s failed but printed %q", h.redact(args), r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "strongroom: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("strongroom %s: stderr %q, want one line starting with \"strongroom: \"", h.redact(args), r.stderr)
	}
	return r
}

// checkStderr makes sure no secret value reached stderr.
func (h *harness) checkStderr(t *testing.T, args []string, r result) {
	t.Helper()
	for _, s := range h.secrets {
		if strings.Contains(r.stderr, s) {
			t.Errorf("strongroom %s: stderr shows a secret value", h.redact(args))
		}
	}
}

// redact hides the client secret when a command line is reported.
func (h *harness) redact(args []string) string {
	return strings.ReplaceAll(strings.Join(args, " "), h.admin.ClientSecret, "<clientSecret>")
}

// substitute fills the seed example's placeholders and port.
func (h *harness) substitute(args []string) []string {
	r := strings.NewReplacer(
		"<clientId>", h.admin.ClientID, "<clientSecret>", h.admin.ClientSecret, "<tenantId>", h.admin.TenantID,
		"https://localhost:8443", fmt.Sprintf("https://localhost:%d", h.port))
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// shellCommands splits a small sh script into commands: backslash-newline continues a line,
// double and single quotes group words, and # starts a comment at a word boundary.
func shellCommands(t *testing.T, script string) [][]string {
	t.Helper()
	script = strings.ReplaceAll(script, "\\\n", " ")
	var cmds [][]string
	for _, line := range strings.Split(script, "\n") {
		var words []string
		var cur strings.Builder
		inWord := false
		var quote rune
	scan:
		for _, c := range line {
			switch {
			case quote != 0 && c == quote:
				quote = 0
			case quote != 0:
				cur.WriteRune(c)
			case c == '"' || c == '\'':
				quote, inWord = c, true
			case c == ' ' || c == '\t':
				if inWord {
					words = append(words, cur.String())
					cur.Reset()
					inWord = false
				}
			case c == '#' && !inWord:
				break scan
			default:
				cur.WriteRune(c)
				inWord = true
			}
		}
		if quote != 0 {
			t.Fatalf("unterminated quote in %q", line)
		}
		if inWord {
			words = append(words, cur.String())
		}
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
	}
	return cmds
}

func decode(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decoding CLI output %q: %v", out, err)
	}
}

func decodeMap(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	decode(t, out, &m)
	return m
}

func hasName(items []map[string]any, name string) bool {
	for _, it := range items {
		if it["name"] == name {
			return true
		}
	}
	return false
}

// versionOf returns the last path segment of a versioned secret id.
func versionOf(id string) string {
	return id[strings.LastIndex(id, "/")+1:]
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for a few seconds; recovery may be asynchronous on a real service.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 50; i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
