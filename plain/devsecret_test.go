package plain_test

import (
	"regexp"
	"strings"
	"testing"

	"paydesk/desk"
	"paydesk/plain"
	"paydesk/protocol"
)

// 6 (status) says when the public development secret is in use, and
// counts one transaction in the singular.
func TestStatusWarnsOfDevSecret(t *testing.T) {
	k := newKiosk(t, protocol.Options{}, "POS001")
	out := k.runWith(t, plain.Config{DevSecret: true}, desk.Config{}, "1\n25.50\n6\n7\n")
	if !strings.Contains(out, "Secret: the public development secret") {
		t.Errorf("status does not warn of the development secret:\n%s", out)
	}
	// 6 acts at once, so the payment may still be in flight: any status.
	if !regexp.MustCompile(`Journal: 1 transaction \(\w+ 1\)`).MatchString(out) {
		t.Errorf("status does not count one transaction:\n%s", out)
	}
	out = k.runWith(t, plain.Config{}, desk.Config{}, "6\n7\n")
	if strings.Contains(out, "development secret") {
		t.Errorf("a real secret is warned of:\n%s", out)
	}
}

// An approval says so once: "Payment Successful!", not "Payment
// Successful! approved".
func TestApprovedSaidOnce(t *testing.T) {
	k := newKiosk(t, protocol.Options{}, "POS001")
	out := k.run(t, "1\n25.50\n7\n")
	if !regexp.MustCompile(`(?m)^Payment Successful!$`).MatchString(out) {
		t.Errorf("the approval line:\n%s", out)
	}
}

// Help's cancel line holds for every rail, not only the POS.
func TestHelpCancelForEveryRail(t *testing.T) {
	k := newKiosk(t, protocol.Options{}, "POS001")
	out := k.run(t, "h\n7\n")
	m := regexp.MustCompile(`(?m)^5 +(.*)$`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(m[1], "card terminal") || !strings.Contains(m[1], "M-Pesa") {
		t.Errorf("help's cancel line %q does not cover the terminal and M-Pesa:\n%s", m, out)
	}
}
