package cluster

import (
	"net/http"

	"github.com/strongroom/strongroom/internal/azkv"
)

// writeEnvelope answers with the error envelope every plane shares; the cluster port and the
// operator socket name the code after the status, or ServiceUnavailable for a retry.
func writeEnvelope(w http.ResponseWriter, status int, code, msg string) {
	azkv.WriteError(w, status, azkv.NewError(code, msg, ""))
}
