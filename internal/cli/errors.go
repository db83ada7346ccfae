package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Exit codes, as az uses them: 1 for a failed command, 2 for bad usage, 3 for a missing resource.
const (
	exitError    = 1
	exitUsage    = 2
	exitNotFound = 3
)

// usageError marks errors in the command line itself.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// cobraUsagePrefixes are the starts of cobra's and pflag's own command-line errors.
var cobraUsagePrefixes = []string{
	"unknown command", "unknown flag", "unknown shorthand flag", "required flag",
	"invalid argument", "flag needs an argument", "bad flag syntax", "if any flags in the group",
	"accepts ", "requires at least",
}

// exitCode picks the process exit code for err.
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	msg := err.Error()
	for _, p := range cobraUsagePrefixes {
		if strings.HasPrefix(msg, p) {
			return exitUsage
		}
	}
	var nf *notFoundError
	if isNotFound(err) || errors.As(err, &nf) {
		return exitNotFound
	}
	return exitError
}

// errorLine renders err as the single line Run prints. The SDKs' own messages span many lines
// (request, separator, raw body), so SDK errors are replaced by "(Code) message" taken from the
// response body; context added by the commands is kept in front.
func errorLine(err error) string {
	msg := err.Error()
	var re *azcore.ResponseError
	var afe *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &re):
		msg = replaceCause(msg, re.Error(), describeResponseError(re))
	case errors.As(err, &afe):
		msg = replaceCause(msg, afe.Error(), describeAuthError(afe))
	}
	return oneLine(msg)
}

// replaceCause swaps the text of a wrapped cause for a better description, keeping the prefix
// of context the callers added with fmt.Errorf("...: %w").
func replaceCause(full, cause, better string) string {
	if i := strings.LastIndex(full, cause); i >= 0 {
		return full[:i] + better + full[i+len(cause):]
	}
	return better
}

// describeResponseError returns "(Code) message" from a service's JSON error body.
func describeResponseError(re *azcore.ResponseError) string {
	code, message := re.ErrorCode, ""
	if re.RawResponse != nil {
		if body, err := runtime.Payload(re.RawResponse); err == nil {
			var env struct {
				Error *struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if json.Unmarshal(body, &env) == nil {
				if env.Error != nil {
					code, message = firstNonEmpty(env.Error.Code, code), env.Error.Message
				} else {
					code, message = firstNonEmpty(env.Code, code), env.Message
				}
			}
		}
	}
	if message == "" {
		message = fmt.Sprintf("the server answered %d %s", re.StatusCode, http.StatusText(re.StatusCode))
	}
	if code == "" {
		return message
	}
	return "(" + code + ") " + message
}

// describeAuthError returns "authentication failed: (error) description" from a token
// endpoint's OAuth error body.
func describeAuthError(afe *azidentity.AuthenticationFailedError) string {
	if afe.RawResponse != nil {
		if body, err := runtime.Payload(afe.RawResponse); err == nil {
			var oe struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(body, &oe) == nil && (oe.Error != "" || oe.Description != "") {
				return fmt.Sprintf("authentication failed: (%s) %s", oe.Error, oe.Description)
			}
		}
	}
	if afe.RawResponse != nil {
		return fmt.Sprintf("authentication failed: the token endpoint answered %s", afe.RawResponse.Status)
	}
	// Without a response (e.g. a transport error) the message is the cause plus a help link.
	msg, _, _ := strings.Cut(afe.Error(), "To troubleshoot, visit")
	return "authentication failed: " + strings.TrimSuffix(strings.TrimSpace(msg), ".")
}

// oneLine folds a multi-line message into one line, dropping separator rules.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Trim(l, "-=") == "" {
			continue
		}
		parts = append(parts, l)
	}
	return strings.Join(parts, " ")
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// isNotFound reports whether err is a 404 from a service.
func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// containerNotFound names the missing thing for 404 codes about an enclosing resource, which
// take precedence over what the command was looking for.
var containerNotFound = map[string]string{
	"VaultNotFound":         "vault",
	"ResourceGroupNotFound": "resource group",
	"SubscriptionNotFound":  "subscription",
}

// notFoundOr wraps err as "<what> not found: ..." for a 404 and as "<doing>: ..." otherwise.
func notFoundOr(err error, what, doing string) error {
	if !isNotFound(err) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		if c, ok := containerNotFound[re.ErrorCode]; ok {
			what = c
		}
	}
	return fmt.Errorf("%s not found: %w", what, err)
}

// notFoundError is a lookup that found nothing without a service 404 (e.g. a vault name missing
// from the subscription's resource list). It exits like a 404.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }
