package auditquery

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Row is a record's one-line summary (the CLI's table output).
type Row struct {
	Time      string `json:"time"`
	Operation string `json:"operation"`
	Vault     string `json:"vault"`
	Secret    string `json:"secret"`
	Caller    string `json:"caller"`
	CallerIP  string `json:"callerIp"`
	Result    string `json:"result"`
	Status    int    `json:"status"`
}

// Summarize reads a record's summary; vaultDNSSuffix is as in Filter.
func Summarize(record []byte, vaultDNSSuffix string) (Row, error) {
	var v view
	if err := json.Unmarshal(record, &v); err != nil {
		return Row{}, fmt.Errorf("decoding an audit record: %w", err)
	}
	r := Row{Time: v.Time, Operation: v.OperationName, Vault: strings.ToLower(vaultOf(&v, vaultDNSSuffix)), Secret: secretOf(&v),
		CallerIP: v.CallerIPAddress, Result: v.ResultType, Status: v.Properties.HTTPStatusCode}
	if id := v.Identity; id != nil {
		c := id.Claim
		switch {
		case c.UPN != "":
			r.Caller = c.UPN
		case c.ObjectID != "":
			r.Caller = c.ObjectID
		default:
			r.Caller = c.AppID
		}
	}
	return r, nil
}
