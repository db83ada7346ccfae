package httpapi

// pimRoutes serve just-in-time elevation (Privileged Identity Management for Azure resources).
var pimRoutes = []authorizationRoute{}
