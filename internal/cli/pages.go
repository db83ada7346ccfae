package cli

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// collectPages walks every page of pager and converts the entries value(page) returns; keep
// decides which entries are listed (nil keeps all non-nil ones). A page error is returned as is.
func collectPages[P, T, O any](ctx context.Context, pager *runtime.Pager[P], value func(P) []*T, keep func(*T) bool, conv func(*T) O) ([]O, error) {
	out := []O{}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range value(page) {
			if p != nil && (keep == nil || keep(p)) {
				out = append(out, conv(p))
			}
		}
	}
	return out, nil
}
