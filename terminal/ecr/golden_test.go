package ecr

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"paydesk/terminal/termsim"
)

// TestPaymentResponsesGolden pins the whole answer of an approved and a
// refused payment, byte for byte, with the driver's clock fixed (so the
// receipt's date and time and the transaction ids are stable).
func TestPaymentResponsesGolden(t *testing.T) {
	at := time.Date(2020, 4, 3, 8, 30, 11, 0, time.UTC) // HiPay's localDate 030420, localTime 083011
	r := newRigWith(t, testTimers, termsim.Options{Think: 30 * time.Millisecond}, func() time.Time { return at })
	a := newAPI(t, r, func(o *Options) { o.Acceptor = "HIPAY" })
	for _, tc := range []struct{ name, body string }{
		{"payment-approved", seedRequest("8.99")},
		{"payment-refused", `{"amount": ` + amountFor(termsim.Refuse) + `, "orderId": "Order_12346", "customData": {"shop": "Opera"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := a.do(http.MethodPost, "/", tc.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(testdata, tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := readFile(t, path); !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("answer differs from %s (go test -update to rewrite):\n%s", path, pretty.Bytes())
			}
		})
	}
}
