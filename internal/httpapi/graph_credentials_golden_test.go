package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
)

// goldenCertificate is a fixed self-signed RSA 2048 certificate (valid 2025-2125, DER in
// base64), so its thumbprint (customKeyIdentifier) is the same in every run.
const goldenCertificate = "MIICnTCCAYWgAwIBAgIBATANBgkqhkiG9w0BAQsFADARMQ8wDQYDVQQDEwZnb2xkZW4wIBcNMjUwMTAxMDAwMDAwWhgPMjEyNTAxMDEwMDAwMDBaMBExDzANBgNVBAMTBmdvbGRlbjCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBALD82pBXafsyl+lBdBTcwqP4bVl5iKFsOMwKywMSYr2W8IskoTuCEuC8KDCmULlTxXU9GfCWMknLJoe4rAuiQCJ4zfNYV/SjurEd6j2HUkedMRnABm4DnwcIahNwq7qJ6SbbwD9z26En0m7FiJ/y2JlLrc1wG53j79gaXAp6CWUSEAQuF9OCiUNmhsKC4LKr1xLVK6KeEeyZrh22vVB8Y/kpvN3V+stKGNrazSIFbUhHO8hoIxxk69tfTuM8pYT8I3ltuOgJ/40w5zsAg5v7N7SBzsk7+56uiCsgNsmbM2DXlqGMaUAR/EBNM5AUqKWQft2TTPmEaroQPAEoynfqoMsCAwEAATANBgkqhkiG9w0BAQsFAAOCAQEABA6ATeF55EB3alilKTQc16uy77LO1uKyWRaqEqrPHUgfml3e/tKi3Gzs3OjTVyaHH2x+Ud23a9l/UO2y1Mk/nXpgz3bkjuOb3xCGlVm2JSShBcTyoit681J8sohUya7GOKosj9eLxHhGG+Avf3K4e6HuLJfNSji7D45rLXpWGYIURdnLAoReOl/TuCMHN13I5D1IwdZdQ8uT4DJkprZxM9s7sW2S81xPR8c/lskX1sfDD/mJiYT+sz3jjb/4hrlTmguFRAKg3kI2k+W7GlpgXQlaa45zQ6kpWhN/hVOqIvnun7QqsLdH5G4TplNHj7c7vATmTygcdmsKOdHuDbEhHQ=="

// graphCredentialGoldenCalls records a golden response of every route of
// graph_credentials.go (TestARM_GoldenResponses calls it): certificates by PATCH, addKey and
// removeKey, and federated identity credentials.
func graphCredentialGoldenCalls(g *goldenRun) {
	e := g.e
	req := httptest.NewRequest("POST", testOrigin+"/"+e.tenantID+"/oauth2/v2.0/token", strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {e.clientID}, "client_secret": {e.clientSecret}, "scope": {testOrigin + "/.default"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	tok, _ := body["access_token"].(string)
	if tok == "" {
		g.t.Fatalf("graph token: %s", rec.Body)
	}
	call := func(name, method, path, body string) map[string]any {
		return graphGolden(g, name, tok, method, path, body)
	}
	cert := goldenCertificate

	app := call("graph-credentials-app-create", "POST", "/v1.0/applications", `{"displayName":"golden credentials"}`)
	appObj, _ := app["id"].(string)
	base := "/v1.0/applications/" + appObj
	call("graph-application-patch-keys", "PATCH", base, `{"keyCredentials":[{"type":"AsymmetricX509Cert","usage":"Verify","displayName":"ci","key":"`+cert+`"}]}`)
	call("graph-application-patch-bad-key", "PATCH", base, `{"keyCredentials":[{"type":"AsymmetricX509Cert","usage":"Verify","key":"bm90IGEgY2VydA=="}]}`)
	call("graph-application-patch-nothing", "PATCH", base, `{}`)
	call("graph-application-patch-rename", "PATCH", base, `{"displayName":"x"}`)
	call("graph-application-patch-same-name", "PATCH", base, `{"displayName":"golden credentials"}`)
	call("graph-application-patch-redirects", "PATCH", base, `{"publicClient":{"redirectUris":["http://localhost:8400"]},"web":{"redirectUris":["https://portal.localhost/signin"]}}`)
	call("graph-application-patch-keys-clear", "PATCH", base, `{"keyCredentials":[]}`)
	added := call("graph-application-add-key", "POST", base+"/addKey", `{"keyCredential":{"type":"AsymmetricX509Cert","usage":"Verify","key":"`+cert+`"},"passwordCredential":null,"proof":""}`)
	keyID, _ := added["keyId"].(string)
	call("graph-application-add-key-duplicate", "POST", base+"/addKey", `{"keyCredential":{"type":"AsymmetricX509Cert","usage":"Verify","key":"`+cert+`"},"proof":""}`)
	call("graph-application-remove-key", "POST", base+"/removeKey", `{"keyId":"`+keyID+`","proof":""}`)
	call("graph-application-remove-key-missing", "POST", base+"/removeKey", `{"keyId":"`+keyID+`","proof":""}`)
	call("graph-fic-create", "POST", base+"/federatedIdentityCredentials",
		`{"name":"aks","issuer":"https://oidc.example.com/issuer","subject":"system:serviceaccount:prod:api","audiences":["api://AzureADTokenExchange"],"description":"prod"}`)
	call("graph-fic-create-http-issuer", "POST", base+"/federatedIdentityCredentials", `{"name":"bad","issuer":"http://oidc.example.com","subject":"s"}`)
	call("graph-fic-create-duplicate", "POST", base+"/federatedIdentityCredentials", `{"name":"aks","issuer":"https://oidc.example.com/other","subject":"s"}`)
	call("graph-fic-list", "GET", base+"/federatedIdentityCredentials", "")
	call("graph-fic-get", "GET", base+"/federatedIdentityCredentials/aks", "")
	call("graph-fic-get-missing", "GET", base+"/federatedIdentityCredentials/nope", "")
	call("graph-fic-update", "PATCH", base+"/federatedIdentityCredentials/aks", `{"subject":"system:serviceaccount:prod:api2","description":"moved"}`)
	call("graph-fic-update-rename", "PATCH", base+"/federatedIdentityCredentials/aks", `{"name":"other"}`)
	call("graph-fic-delete", "DELETE", base+"/federatedIdentityCredentials/aks", "")
	call("graph-fic-delete-missing", "DELETE", base+"/federatedIdentityCredentials/aks", "")
	call("graph-fic-list-missing-app", "GET", "/v1.0/applications/00000000-0000-0000-0000-000000000000/federatedIdentityCredentials", "")
	call("graph-application-patch-redirects-clear", "PATCH", base, `{"publicClient":{"redirectUris":[]}}`)
	call("graph-credentials-app-delete", "DELETE", base, "")
}
