package httpapi

// managedIdentityRoutes serve Microsoft.ManagedIdentity (user-assigned identities) and the
// identity hosts they are assigned to.
var managedIdentityRoutes = []armRoute{}
