package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/config"
)

func TestAuditConfig_ValidateAndDefaults(t *testing.T) {
	cases := []struct {
		name, yaml, wantErr string
		want                config.AuditConfig
	}{
		{"defaults", "", "", config.AuditConfig{MaxFileBytes: 256 << 20, MinFreeBytes: 512 << 20, CheckpointRecords: 1000, CheckpointInterval: time.Minute}},
		{"set", "audit: {max_file_bytes: 2097152, retain_files: 3, min_free_bytes: 1, checkpoint_records: 10, checkpoint_interval: 5s}", "",
			config.AuditConfig{MaxFileBytes: 2 << 20, RetainFiles: 3, MinFreeBytes: 1, CheckpointRecords: 10, CheckpointInterval: 5 * time.Second}},
		{"negative size", "audit: {max_file_bytes: -1}", "audit.max_file_bytes:", config.AuditConfig{}},
		{"tiny size", "audit: {max_file_bytes: 1000}", "audit.max_file_bytes:", config.AuditConfig{}},
		{"negative retention", "audit: {retain_files: -2}", "audit.retain_files:", config.AuditConfig{}},
		{"negative free", "audit: {min_free_bytes: -2}", "audit.min_free_bytes:", config.AuditConfig{}},
		{"negative records", "audit: {checkpoint_records: -2}", "audit.checkpoint_records:", config.AuditConfig{}},
		{"short interval", "audit: {checkpoint_interval: 10ms}", "audit.checkpoint_interval:", config.AuditConfig{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			err := cfg.Parse(strings.NewReader(c.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(cfg.Audit, c.want) {
				t.Fatalf("Audit = %+v, err = %v; want %+v", cfg.Audit, err, c.want)
			}
		})
	}
}
