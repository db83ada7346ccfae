package httpapi

// accessPolicyRoutes serve a vault's access policies (PUT .../vaults/{v}/accessPolicies/{kind}).
var accessPolicyRoutes = []armRoute{}
