package httpapi

// monitorRoutes serve alert rules, fired alerts and honeytokens.
var monitorRoutes = []armRoute{}

// AlertsAPI is what the alert routes need from the alert engine.
type AlertsAPI interface{}
