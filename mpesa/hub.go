package mpesa

import (
	"context"
	"fmt"
	"net/http"
)

// The hub's paths Daraja posts to when a kiosk's callbacks go through the
// hub (Options.HubURL). Daraja refuses "mpesa" in a callback URL.
const (
	HubPathSTK             = "/v1/daraja/stk/result"
	HubPathC2BValidation   = "/v1/daraja/c2b/validation"
	HubPathC2BConfirmation = "/v1/daraja/c2b/confirmation"
)

// Kinds of callback HubCallback takes.
const (
	HubSTK             = "stk"
	HubC2BConfirmation = "c2b_confirmation"
)

// HubCallback applies a callback the hub received from Daraja for this
// kiosk exactly as one received by the rail's own callback server: the
// same matching, amount checks, flags and duplicates; source is the
// address Daraja posted from and allowed whether the allow-list holds it.
// It returns nil once the callback is journaled (or, for a body that does
// not decode, its rejection), so the hub may forget it; an error means
// nothing was journaled and the hub should deliver it again.
func (r *Rail) HubCallback(ctx context.Context, kind string, body []byte, source string, allowed bool) error {
	ctx, in := context.WithoutCancel(ctx), inbound{body: body, raw: MaskRaw(body), source: source, allowed: allowed}
	var status int
	switch kind {
	case HubSTK:
		status, _ = r.onSTK(ctx, in)
	case HubC2BConfirmation:
		status, _ = r.onConfirmation(ctx, in)
	default:
		return fmt.Errorf("M-Pesa via the hub: unknown callback kind %q", truncate(kind, 40))
	}
	if status >= http.StatusInternalServerError {
		return fmt.Errorf("M-Pesa via the hub: %s callback not journaled", kind)
	}
	return nil
}
