package azkv

import "net/http"

// Error is the error envelope of every Strongroom plane: Key Vault's and ARM's
// {"error":{"code","message"}}, which the operator socket, the cluster port and the /sys routes
// answer too.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the inside of the envelope.
type ErrorBody struct {
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	InnerError *InnerCode `json:"innererror,omitempty"`
	// Target and AdditionalInfo appear in ARM errors that carry them (a policy denial).
	Target         string           `json:"target,omitempty"`
	AdditionalInfo []map[string]any `json:"additionalInfo,omitempty"`
}

// InnerCode is the optional innererror.
type InnerCode struct {
	Code string `json:"code"`
}

// NewError builds an envelope; inner may be empty.
func NewError(code, message, inner string) Error {
	e := Error{Error: ErrorBody{Code: code, Message: message}}
	if inner != "" {
		e.Error.InnerError = &InnerCode{Code: inner}
	}
	return e
}

// WriteError answers status with the envelope e. It is the one writer of error bodies: each
// plane only decides the status and the code. An error is never cached: Cache-Control is
// no-store unless the plane has set its own (the data and management planes send Key Vault's
// no-cache on every response).
func WriteError(w http.ResponseWriter, status int, e Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if _, ok := h["Cache-Control"]; !ok {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	w.Write(Marshal(e))
}
