package httpapi

// eventSubscriptionRoutes serve Event Grid event subscriptions on a vault.
var eventSubscriptionRoutes = []armRoute{}

// EventsAPI is what the event-subscription routes need from the event service.
type EventsAPI interface{}
