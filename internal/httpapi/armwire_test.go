package httpapi

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/strongroom/strongroom/internal/azkv/arm"
	"github.com/strongroom/strongroom/internal/service"
)

// The wire and stored vault properties convert both ways without losing a field, a nil or an
// empty list, and encode to the same JSON: what went on the wire when the stored type was sent
// as is. A field added to one type and not the other fails here.
func TestVaultProperties_WireConversion(t *testing.T) {
	if n, m := countFields(reflect.TypeFor[service.VaultProperties]()), countFields(reflect.TypeFor[arm.VaultProperties]()); n != m {
		t.Fatalf("service.VaultProperties has %d fields (nested included), arm.VaultProperties %d: convert the new ones in armwire.go", n, m)
	}
	full := service.VaultProperties{}
	fill(reflect.ValueOf(&full).Elem())
	empty := service.VaultProperties{AccessPolicies: []service.AccessPolicy{}, NetworkAcls: &service.NetworkRuleSet{IPRules: []service.IPRule{}}}
	for name, stored := range map[string]service.VaultProperties{"every field set": full, "zero": {}, "empty lists": empty} {
		t.Run(name, func(t *testing.T) {
			wire := wireVaultProperties(stored)
			back := storedVaultProperties(&wire)
			if !reflect.DeepEqual(*back, stored) {
				t.Fatalf("round trip changed the properties:\n got %+v\nwant %+v", *back, stored)
			}
			wj, _ := json.Marshal(wire)
			sj, _ := json.Marshal(stored)
			if string(wj) != string(sj) {
				t.Fatalf("wire JSON differs from the stored type's:\nwire   %s\nstored %s", wj, sj)
			}
		})
	}
	if storedVaultProperties(nil) != nil {
		t.Fatal("absent properties became present")
	}
}

// countFields counts the leaf fields of t, through pointers, slices and nested structs.
func countFields(t reflect.Type) int {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return 1
	}
	n := 0
	for i := range t.NumField() {
		n += countFields(t.Field(i).Type)
	}
	return n
}

// fill sets every field of v to a non-zero value (lists get two elements).
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int:
		v.SetInt(7)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	}
}
