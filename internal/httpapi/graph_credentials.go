package httpapi

// graphCredentialRoutes serve an application's certificate and federated credentials
// (keyCredentials, federatedIdentityCredentials).
var graphCredentialRoutes = []armRoute{}
