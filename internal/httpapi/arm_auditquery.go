package httpapi

// auditQueryRoutes serve queries over the audit log.
var auditQueryRoutes = []armRoute{}

// AuditQueryAPI is what the audit query route needs from the audit log.
type AuditQueryAPI interface{}
