package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/service"
)

var errInternal = errors.New("internal error")

// writeError is the one place where domain errors become statuses; azkv.WriteError writes the
// envelope. Errors that are not domain errors are logged by the caller's audit record as 500
// and never shown in detail.
func writeError(w http.ResponseWriter, err error) {
	var de *service.Error
	if !errors.As(err, &de) {
		de = &service.Error{Kind: errInternal, Code: "InternalServerError", Message: "The server encountered an internal error; see the server log for the request id."}
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(de.Kind, service.ErrBadRequest):
		status = http.StatusBadRequest
	case errors.Is(de.Kind, service.ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(de.Kind, service.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(de.Kind, service.ErrConflict):
		status = http.StatusConflict
	case errors.Is(de.Kind, service.ErrThrottled):
		status = http.StatusTooManyRequests
	case errors.Is(de.Kind, service.ErrUnavailable):
		status = http.StatusServiceUnavailable
	case errors.Is(de.Kind, errUnauthorized):
		status = http.StatusUnauthorized
	}
	e := azkv.NewError(de.Code, de.Message, de.Inner)
	e.Error.Target, e.Error.AdditionalInfo = de.Target, de.AdditionalInfo
	azkv.WriteError(w, status, e)
}

var errUnauthorized = errors.New("unauthorized")

func badParam(format string, args ...any) error {
	return &service.Error{Kind: service.ErrBadRequest, Code: "BadParameter", Message: fmt.Sprintf(format, args...)}
}
