// Alert settings: the alert rules set through the API and the honeytoken set. Both are stored
// here so that they replicate with everything else, and every node keeps them in memory
// (alertState), refreshed by its own writes and, in a cluster, by KeysApplied.

package service

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Layout (values sealed with the system DEK, so a reader of the store file cannot tell a
// honeytoken from any other secret; the keys name only rules and vault ids):
//
//	sys/alerts/rule/<lower rule name>     an alert rule (AlertRule)
//	sys/alerts/honeytokens/<vault id>     the vault's honeytoken names (honeytokenSet)
const (
	alertsPrefix     = "sys/alerts/"
	alertRulePrefix  = alertsPrefix + "rule/"
	honeytokenPrefix = alertsPrefix + "honeytokens/"
	// MaxAlertRules and MaxHoneytokensPerVault bound what the settings hold in memory.
	MaxAlertRules          = 64
	MaxHoneytokensPerVault = 256
)

// Operator actions of the alert settings (authz.OperatorPrefix: only the Strongroom Operator
// role, which the bootstrap admin holds, grants them; Owner's "*" does not).
const (
	ActionAlertRulesRead   = "alertRules/read"
	ActionAlertRulesWrite  = "alertRules/write"
	ActionAlertRulesDelete = "alertRules/delete"
	ActionAlertsRead       = "alerts/read"
	ActionHoneytokensRead  = "honeytokens/read"
	ActionHoneytokensWrite = "honeytokens/write"
)

// AlertRule is one alert rule set through the API: its name and its settings as the alert
// engine reads them (internal/alerts validates them before they get here).
type AlertRule struct {
	Name       string          `json:"name"`
	Properties json.RawMessage `json:"properties"`
}

type honeytokenSet struct {
	Names []string `json:"names"` // upper-cased secret names
}

// alertState is the in-memory copy of the settings. The zero value is ready; load fills it at
// first use.
type alertState struct {
	mu       sync.RWMutex
	loaded   bool
	rules    map[string]AlertRule           // lower name -> rule
	honey    map[string]map[string]struct{} // vault id -> upper secret names
	watchers []func()
}

// AuthorizeAlerts checks that the caller may run the operator action op of the alerts
// (one of the Action* constants), for routes served from the alert engine's memory.
func (s *Service) AuthorizeAlerts(ctx context.Context, op string) error { return s.operator(ctx, op) }

// PutAlertRule stores rule r (created reports whether it is new).
func (s *Service) PutAlertRule(ctx context.Context, r AlertRule) (created bool, err error) {
	if err := s.operator(ctx, ActionAlertRulesWrite); err != nil {
		return false, err
	}
	if err := s.loadAlerts(ctx); err != nil {
		return false, err
	}
	key := alertRulePrefix + strings.ToLower(r.Name)
	s.alerts.mu.RLock()
	_, exists := s.alerts.rules[strings.ToLower(r.Name)]
	n := len(s.alerts.rules)
	s.alerts.mu.RUnlock()
	if !exists && n >= MaxAlertRules {
		return false, newErr(ErrBadRequest, "BadRequest", "", "At most %d alert rules can be set.", MaxAlertRules)
	}
	sealed, err := s.seal(ctx, keyring.SystemKeyID, key, r)
	if err != nil {
		return false, err
	}
	if err := s.apply(ctx, []store.Op{store.Put(key, sealed)}); err != nil {
		return false, err
	}
	return !exists, s.reloadAlertKeys(ctx, []string{key})
}

// AlertRules lists the rules set through the API, by name.
func (s *Service) AlertRules(ctx context.Context) ([]AlertRule, error) {
	if err := s.operator(ctx, ActionAlertRulesRead); err != nil {
		return nil, err
	}
	return s.alertRules(ctx)
}

// DeleteAlertRule removes a rule set through the API (a built-in rule returns to its
// configured settings).
func (s *Service) DeleteAlertRule(ctx context.Context, name string) error {
	if err := s.operator(ctx, ActionAlertRulesDelete); err != nil {
		return err
	}
	if err := s.loadAlerts(ctx); err != nil {
		return err
	}
	s.alerts.mu.RLock()
	_, exists := s.alerts.rules[strings.ToLower(name)]
	s.alerts.mu.RUnlock()
	if !exists {
		return newErr(ErrNotFound, "ResourceNotFound", "", "The alert rule '%s' was not found.", name)
	}
	key := alertRulePrefix + strings.ToLower(name)
	if err := s.apply(ctx, []store.Op{store.Delete(key)}); err != nil {
		return err
	}
	return s.reloadAlertKeys(ctx, []string{key})
}

// SetHoneytoken marks (on true) or unmarks a secret name of vault rg/vaultName as a
// honeytoken: every read of it alerts. The secret itself is untouched, so its reads look like
// any other's; only operators can read the mark.
func (s *Service) SetHoneytoken(ctx context.Context, rg, vaultName, secretName string, on bool) error {
	if err := s.operator(ctx, ActionHoneytokensWrite); err != nil {
		return err
	}
	if !validSecretName(secretName) {
		return newErr(ErrBadRequest, "BadParameter", "", "The secret name '%s' is not valid.", secretName)
	}
	v, err := s.liveVault(rg, vaultName)
	if err != nil {
		return err
	}
	if err := s.loadAlerts(ctx); err != nil {
		return err
	}
	key := honeytokenPrefix + v.ID
	upper := strings.ToUpper(secretName)
	return retry(func() error {
		var set honeytokenSet
		raw, found, err := s.get(ctx, keyring.SystemKeyID, key, &set)
		if err != nil {
			return err
		}
		has := slices.Contains(set.Names, upper)
		switch {
		case on == has:
			return nil
		case on && len(set.Names) >= MaxHoneytokensPerVault:
			return newErr(ErrBadRequest, "BadRequest", "", "A vault can hold at most %d honeytokens.", MaxHoneytokensPerVault)
		case on:
			set.Names = append(set.Names, upper)
			slices.Sort(set.Names)
		default:
			set.Names = slices.DeleteFunc(set.Names, func(n string) bool { return n == upper })
		}
		guard := store.RequireAbsent(key)
		if found {
			guard = store.RequireEqual(key, raw)
		}
		op := store.Delete(key)
		if len(set.Names) > 0 {
			sealed, err := s.seal(ctx, keyring.SystemKeyID, key, set)
			if err != nil {
				return err
			}
			op = store.Put(key, sealed)
		}
		if err := s.apply(ctx, []store.Op{guard, op}); err != nil {
			return err
		}
		return s.reloadAlertKeys(ctx, []string{key})
	})
}

// Honeytokens lists the honeytoken names of vault rg/vaultName (upper-cased, sorted).
func (s *Service) Honeytokens(ctx context.Context, rg, vaultName string) ([]string, error) {
	if err := s.operator(ctx, ActionHoneytokensRead); err != nil {
		return nil, err
	}
	v, err := s.liveVault(rg, vaultName)
	if err != nil {
		return nil, err
	}
	if err := s.loadAlerts(ctx); err != nil {
		return nil, err
	}
	s.alerts.mu.RLock()
	defer s.alerts.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.alerts.honey[v.ID])), nil
}

// AlertView is the alert engine's in-process view of the settings, from memory and with no
// caller. It is no entry point's: routes read the settings through the guarded methods above.
type AlertView struct{ s *Service }

// Alerting returns svc's AlertView.
func Alerting(svc *Service) AlertView { return AlertView{s: svc} }

// IsHoneytoken reports whether secretName of the vault named vaultName is a honeytoken (a map
// lookup).
func (v AlertView) IsHoneytoken(vaultName, secretName string) bool {
	s := v.s
	vault := s.cachedVault(vaultName)
	if vault == nil {
		return false
	}
	s.alerts.mu.RLock()
	defer s.alerts.mu.RUnlock()
	_, ok := s.alerts.honey[vault.ID][strings.ToUpper(secretName)]
	return ok
}

// Rules returns the rules set through the API, by name.
func (v AlertView) Rules(ctx context.Context) ([]AlertRule, error) { return v.s.alertRules(ctx) }

// Watch calls fn after the settings change on this node, by a write here (before the write
// returns) or one a cluster applied. fn must not block; it may call Rules.
func (v AlertView) Watch(fn func()) {
	s := v.s
	s.alerts.mu.Lock()
	s.alerts.watchers = append(s.alerts.watchers, fn)
	s.alerts.mu.Unlock()
}

func (s *Service) alertRules(ctx context.Context) ([]AlertRule, error) {
	if err := s.loadAlerts(ctx); err != nil {
		return nil, err
	}
	s.alerts.mu.RLock()
	defer s.alerts.mu.RUnlock()
	var rules []AlertRule
	for _, name := range slices.Sorted(maps.Keys(s.alerts.rules)) {
		rules = append(rules, s.alerts.rules[name])
	}
	return rules, nil
}

// loadAlerts reads every alert setting once (they are few and bounded).
func (s *Service) loadAlerts(ctx context.Context) error {
	s.alerts.mu.RLock()
	loaded := s.alerts.loaded
	s.alerts.mu.RUnlock()
	if loaded {
		return nil
	}
	var keys []string
	if err := s.st.Scan(ctx, alertsPrefix, "", func(key string, _ []byte) bool {
		keys = append(keys, key)
		return true
	}); err != nil {
		return fmt.Errorf("reading alert settings: %w", err)
	}
	s.alerts.mu.Lock()
	defer s.alerts.mu.Unlock()
	if s.alerts.loaded {
		return nil
	}
	s.alerts.rules, s.alerts.honey = map[string]AlertRule{}, map[string]map[string]struct{}{}
	if err := s.readAlertKeysLocked(ctx, keys); err != nil {
		return err
	}
	s.alerts.loaded = true
	return nil
}

// reloadAlertKeys re-reads keys into memory and tells the watchers.
func (s *Service) reloadAlertKeys(ctx context.Context, keys []string) error {
	s.alerts.mu.Lock()
	if !s.alerts.loaded {
		s.alerts.mu.Unlock()
		return s.loadAlerts(ctx)
	}
	err := s.readAlertKeysLocked(ctx, keys)
	watchers := slices.Clone(s.alerts.watchers)
	s.alerts.mu.Unlock()
	for _, fn := range watchers {
		fn()
	}
	return err
}

// readAlertKeysLocked reads keys into s.alerts; call with s.alerts.mu held.
func (s *Service) readAlertKeysLocked(ctx context.Context, keys []string) error {
	for _, key := range keys {
		switch {
		case strings.HasPrefix(key, alertRulePrefix):
			name := key[len(alertRulePrefix):]
			var r AlertRule
			_, found, err := s.get(ctx, keyring.SystemKeyID, key, &r)
			if err != nil {
				return fmt.Errorf("reading alert rule %s: %w", name, err)
			}
			if found {
				s.alerts.rules[name] = r
			} else {
				delete(s.alerts.rules, name)
			}
		case strings.HasPrefix(key, honeytokenPrefix):
			id := key[len(honeytokenPrefix):]
			var set honeytokenSet
			_, found, err := s.get(ctx, keyring.SystemKeyID, key, &set)
			if err != nil {
				return fmt.Errorf("reading the honeytokens of vault %s: %w", id, err)
			}
			if !found || len(set.Names) == 0 {
				delete(s.alerts.honey, id)
				continue
			}
			names := make(map[string]struct{}, len(set.Names))
			for _, n := range set.Names {
				names[n] = struct{}{}
			}
			s.alerts.honey[id] = names
		}
	}
	return nil
}

// alertKeysApplied refreshes the settings a replicated store changed on this node. A failed
// read is logged and left to the next change: the vault caches must still refresh.
func (s *Service) alertKeysApplied(ctx context.Context, keys []string) {
	var changed []string
	for _, k := range keys {
		if strings.HasPrefix(k, alertsPrefix) {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return
	}
	if err := s.reloadAlertKeys(ctx, changed); err != nil {
		s.logger().Error("refreshing alert settings", "err", err)
	}
}
