package ecr

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/terminal/termsim"
)

// seedRequest is HiPay's sample request, with the amount changed.
func seedRequest(amount string) string {
	return `{
  "amount": ` + amount + `,
  "orderId": "Order_12345",
  "currency": "EUR",
  "basket": {"european_article_numbering": 4711892728946, "product_reference": "NF-a1690", "type": "good",
    "quantity": 1, "name": "My first product", "unit_price": 8.99, "tax_rate": 0, "discount": 0, "total_amount": 8.99},
  "customer": {"id": 283749291, "firstname": "John", "lastname": "Doe", "email": "john.doe@example.com"},
  "customData": {"shop": "Opera", "vendor": "Mario", "newCustomer": true, "event": 42}
}`
}

func amountFor(b termsim.Behaviour) string {
	for _, c := range termsim.Table {
		if c.Behaviour == b {
			return fmt.Sprintf("%d.%02d", c.Amount/100, c.Amount%100)
		}
	}
	panic("no amount for " + b)
}

func TestAuthFailuresAre401WithChallenge(t *testing.T) {
	a := newAPI(t, newRig(t), nil)
	for _, tc := range []struct {
		name, user, pass string
		auth             bool
		why              string
	}{
		{"no credentials", "", "", false, "no Basic Auth credentials"},
		{"wrong user", "admin", testPass, true, "wrong user"},
		{"wrong password", testUser, "pwd", true, "wrong password"},
		{"empty password", testUser, "", true, "wrong password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/version", "/cancel", "/"} {
				method := http.MethodGet
				body := ""
				if path == "/" {
					method, body = http.MethodPost, seedRequest("8.99")
				}
				resp, b := a.doAuth(method, path, body, tc.user, tc.pass, tc.auth)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%s %s: status %d, want 401: %s", method, path, resp.StatusCode, b)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic realm=") {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if code, _ := errCode(t, b); code != CodeUnauthorized {
					t.Errorf("code %q", code)
				}
			}
			if !strings.Contains(a.logBuf.String(), "reason=\""+tc.why+"\"") {
				t.Errorf("log has no rejection with reason %q", tc.why)
			}
		})
	}
	if _, ok := a.drv.Current(); ok {
		t.Fatal("an unauthenticated payment reached the terminal")
	}
	if n := a.sim.Stats().Requests; n != 0 {
		t.Fatalf("the terminal got %d requests", n)
	}
	rejected := 0
	for _, ev := range a.events() {
		if ev.Kind == payment.KindRejected && strings.Contains(ev.Detail, "401") {
			rejected++
		}
	}
	if rejected != 12 {
		t.Errorf("%d rejections journaled, want 12", rejected)
	}
	if strings.Contains(a.logBuf.String(), testPass) {
		t.Error("the password is in the log")
	}
	resp, b := a.do(http.MethodGet, "/version", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("right credentials: %d %s", resp.StatusCode, b)
	}
}

func TestPaymentApprovedAnswersSeedShape(t *testing.T) {
	a := newAPI(t, newRig(t), func(o *Options) { o.Acceptor = "HIPAY" })
	resp, b := a.do(http.MethodPost, "/", seedRequest("8.99"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	m := one(t, b)
	if m["status"] != StatusSuccess || m["error"] != nil {
		t.Fatalf("status %v error %v", m["status"], m["error"])
	}
	rc, ok := m["receipt"].(map[string]any)
	if !ok {
		t.Fatalf("no receipt: %s", b)
	}
	want := map[string]string{
		"amount": "00000899", "currencyNumCode": "978", "currencyAlphaCode": "EUR", "currencyFractionPart": "2",
		"primaryAccountNumber": "XXXXXXXXXXXX1234", "transactionType": "01", "label": "CARTE           ", "acceptor": "HIPAY",
	}
	for k, v := range want {
		if rc[k] != v {
			t.Errorf("receipt.%s = %q, want %q", k, rc[k], v)
		}
	}
	for _, k := range []string{"localDate", "localTime"} {
		if s, _ := rc[k].(string); !regexp.MustCompile(`^\d{6}$`).MatchString(s) {
			t.Errorf("receipt.%s = %q, want 6 digits", k, s)
		}
	}
	ticket, _ := m["ticket"].(string)
	for _, part := range []string{"CARTE BANCAIRE|CARTE|LE ", "|HIPAY|XXXXXXXXXXXX1234|MONTANT:8,99 EUR|DEBIT|TICKET CLIENT A CONSERVER||"} {
		if !strings.Contains(ticket, part) {
			t.Errorf("ticket %q lacks %q", ticket, part)
		}
	}
	// The echo is the request as sent.
	var req map[string]json.RawMessage
	json.Unmarshal([]byte(seedRequest("8.99")), &req)
	var arr []map[string]json.RawMessage
	json.Unmarshal(b, &arr)
	for _, k := range []string{"amount", "orderId", "currency", "basket", "customer", "customData"} {
		if compact(req[k]) != compact(arr[0][k]) {
			t.Errorf("echo of %s = %s, want %s", k, arr[0][k], req[k])
		}
	}
	if m["notificationHipaySent"] != false {
		t.Errorf("notificationHipaySent = %v without an outbox", m["notificationHipaySent"])
	}
	id, _ := m["transactionId"].(string)
	tx, err := a.j.Txn(context.Background(), id)
	if err != nil || tx.Status != payment.StatusApproved || tx.Amount.Minor != 899 || tx.Amount.Currency != "EUR" {
		t.Fatalf("journal: %+v %v", tx, err)
	}
	if q := a.sim.Stats().LastRequest; q.Amount != 899 || q.Currency != "978" {
		t.Errorf("the terminal got %+v", q)
	}
}

func compact(b []byte) string {
	var v any
	json.Unmarshal(b, &v)
	out, _ := json.Marshal(v)
	return string(out)
}

func TestPaymentRefusedAndGeneratedOrderID(t *testing.T) {
	a := newAPI(t, newRig(t), nil)
	resp, b := a.do(http.MethodPost, "/payment", `{"amount": `+amountFor(termsim.Refuse)+`}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	m := one(t, b)
	if m["status"] != StatusRefused {
		t.Fatalf("status %v: %s", m["status"], b)
	}
	code, msg := errCode(t, b)
	if code != string(payment.StatusDeclined) || !strings.Contains(msg, "refused") {
		t.Errorf("error %q %q", code, msg)
	}
	rc, _ := m["receipt"].(map[string]any)
	if rc == nil || rc["primaryAccountNumber"] != "" || rc["amount"] != "00000601" {
		t.Errorf("receipt %v", rc)
	}
	if !strings.Contains(m["ticket"].(string), "PAIEMENT REFUSE") {
		t.Errorf("ticket %q", m["ticket"])
	}
	if id, _ := m["orderId"].(string); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("generated orderId %q is not a UUID", id)
	}
	if m["currency"] != "EUR" || m["basket"] != nil || m["customer"] != nil || m["customData"] != nil {
		t.Errorf("echo of absent fields: %s", b)
	}
}

func TestSecondPaymentWhileBusyIs409(t *testing.T) {
	a := newAPI(t, newRig(t), nil)
	var wg sync.WaitGroup
	var first []byte
	var firstCode int
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, b := a.do(http.MethodPost, "/", `{"amount": `+amountFor(termsim.Slow)+`, "orderId": "slow-1"}`)
		firstCode, first = resp.StatusCode, b
	}()
	waitFor(t, 2*time.Second, "the slow payment on the terminal", func() bool { _, ok := a.drv.Current(); return ok })
	resp, b := a.do(http.MethodPost, "/", `{"amount": 1.00, "orderId": "second"}`)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second payment: status %d, want 409: %s", resp.StatusCode, b)
	}
	code, msg := errCode(t, b)
	if code != CodeBusy || !strings.Contains(msg, "slow-1") {
		t.Errorf("error %q %q", code, msg)
	}
	// /check answers at once with the known health and the busy payment.
	start := time.Now()
	if resp, b := a.do(http.MethodGet, "/check", ""); resp.StatusCode != http.StatusOK || one(t, b)["busy"] == nil || one(t, b)["cr"] != "0" {
		t.Errorf("check while busy: %d %s", resp.StatusCode, b)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("check while busy took %s", d)
	}
	// /reset would close the port under the payment: refused too.
	if resp, b := a.do(http.MethodGet, "/reset", ""); resp.StatusCode != http.StatusConflict {
		t.Errorf("reset while busy: %d %s", resp.StatusCode, b)
	}
	wg.Wait()
	if firstCode != http.StatusOK || one(t, first)["status"] != StatusSuccess {
		t.Fatalf("first payment: %d %s", firstCode, first)
	}
	if n := a.sim.Stats().Requests; n != 1 {
		t.Errorf("the terminal got %d requests, want 1", n)
	}
	// Free again.
	resp, b = a.do(http.MethodPost, "/", `{"amount": 1.00}`)
	if resp.StatusCode != http.StatusOK || one(t, b)["status"] != StatusSuccess {
		t.Fatalf("payment after the slow one: %d %s", resp.StatusCode, b)
	}
}

func TestCancelAfterTerminalAccepted(t *testing.T) {
	a := newAPI(t, newRig(t), nil)
	if resp, b := a.do(http.MethodGet, "/cancel", ""); resp.StatusCode != http.StatusConflict {
		t.Fatalf("cancel with nothing in progress: %d %s", resp.StatusCode, b)
	} else if code, _ := errCode(t, b); code != CodeNoPayment {
		t.Fatalf("code %q", code)
	}
	var wg sync.WaitGroup
	var pay []byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, pay = a.do(http.MethodPost, "/", `{"amount": `+amountFor(termsim.SlowAbandon)+`, "orderId": "to-cancel"}`)
	}()
	waitFor(t, 2*time.Second, "the terminal to accept", func() bool { f, ok := a.drv.Current(); return ok && f.Accepted })
	resp, b := a.do(http.MethodGet, "/cancel", "")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel: %d %s, want 202: the terminal decides", resp.StatusCode, b)
	}
	m := one(t, b)
	if m["status"] != StatusCancelRequested || m["acceptedByTerminal"] != true || m["orderId"] != "to-cancel" ||
		!strings.Contains(m["message"].(string), "cancel requested") {
		t.Errorf("cancel answer %s", b)
	}
	if f, ok := a.drv.Current(); !ok || !f.CancelRequested {
		t.Errorf("driver flight %+v: cancel not requested", f)
	}
	wg.Wait()
	pm := one(t, pay)
	if pm["status"] != StatusCancelled {
		t.Fatalf("payment after cancel: %s", pay)
	}
	if code, _ := errCode(t, pay); code != string(payment.StatusCancelled) {
		t.Errorf("code %q", code)
	}
}

// A cancel the terminal never confirms is not a cancellation: the
// payment's answer is the same Timeout as a silent terminal's without
// a cancel.
func TestCancelWithoutTheTerminalsAnswerIsATimeout(t *testing.T) {
	timers := testTimers
	timers.Result = time.Second
	a := newAPI(t, newRigTimers(t, timers), nil)
	var wg sync.WaitGroup
	var pay []byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, pay = a.do(http.MethodPost, "/", `{"amount": `+amountFor(termsim.NeverAnswer)+`, "orderId": "silent"}`)
	}()
	waitFor(t, 2*time.Second, "the terminal to accept", func() bool { f, ok := a.drv.Current(); return ok && f.Accepted })
	if resp, b := a.do(http.MethodGet, "/cancel", ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", resp.StatusCode, b)
	}
	wg.Wait()
	if m := one(t, pay); m["status"] != StatusTimeout {
		t.Fatalf("payment after an unconfirmed cancel: %s, want Timeout", pay)
	}
}

func TestMaintenanceEndpoints(t *testing.T) {
	a := newAPI(t, newRig(t), func(o *Options) { o.Version = "1.2.3" })
	resp, b := a.do(http.MethodGet, "/check", "")
	m := one(t, b)
	if resp.StatusCode != http.StatusOK || m["cr"] != "0" || m["periph"] != "0" || m["card"] != nil || m["call"] != nil || m["state"] != "ok" {
		t.Errorf("check: %d %s", resp.StatusCode, b)
	}
	before := a.drv.Health().LastProbe
	resp, b = a.do(http.MethodGet, "/reset", "")
	if resp.StatusCode != http.StatusOK || one(t, b)["state"] != "ok" {
		t.Errorf("reset: %d %s", resp.StatusCode, b)
	}
	if !a.drv.Health().LastProbe.After(before) {
		t.Error("reset did not probe the terminal again")
	}
	resp, b = a.do(http.MethodGet, "/version", "")
	m = one(t, b)
	if resp.StatusCode != http.StatusOK || m["type"] != "tpa" || !strings.HasPrefix(m["version"].(string), "1.2.3-tpa-") ||
		!strings.HasSuffix(m["version"].(string), m["os"].(string)) {
		t.Errorf("version: %s", b)
	}
	resp, b = a.do(http.MethodGet, "/config", "")
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), testPass) || strings.Contains(string(b), "Test_hipay_secret") {
		t.Errorf("config leaks a password or failed: %d %s", resp.StatusCode, b)
	}
	st, _ := one(t, b)["settings"].(map[string]any)
	if st["terminalManagerPassword"] != Mask || st["hipayPassword"] != Mask || st["serialPort"] != "/dev/ttyACM0" || st["localPort"] != 8080.0 {
		t.Errorf("config settings: %v", st)
	}
	for _, path := range []string{"/tlc", "/stop"} {
		resp, b = a.do(http.MethodGet, path, "")
		if code, msg := errCode(t, b); resp.StatusCode != http.StatusNotImplemented || code != CodeNotSupported || !strings.Contains(msg, "not supported") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
	for _, tc := range []struct{ method, path string }{{"GET", "/"}, {"PUT", "/cancel"}, {"HEAD", "/cancel"}, {"POST", "/check"}} {
		resp, _ = a.do(tc.method, tc.path, "")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: %d Allow=%q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if resp, _ = a.do("GET", "/nope", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

func TestBadRequestsAreRefusedWithSpecificMessages(t *testing.T) {
	a := newAPI(t, newRig(t), nil)
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"malformed JSON", `{"amount": 9.99,`, 400, "malformed JSON"},
		{"not an object", `[{"amount": 9.99}]`, 400, "must be a JSON object, not an array"},
		{"empty body", ``, 400, "empty body"},
		{"trailing data", `{"amount": 9.99} {"amount": 1}`, 400, "data after the JSON object"},
		{"duplicate amount", `{"amount": 1.00, "amount": 900.00}`, 400, `field "amount" given twice`},
		{"amount as a string", `{"amount": "9.99"}`, 400, "amount: must be a JSON number such as 9.99, not a string"},
		{"amount missing", `{"orderId": "x"}`, 400, "amount: missing"},
		{"orderId as a number", `{"amount": 9.99, "orderId": 12345}`, 400, "orderId: must be a string"},
		{"unknown field", `{"amount": 9.99, "ammount": 9.99}`, 400, `unknown field "ammount"`},
		{"negative amount", `{"amount": -5.00}`, 400, "amount: -5.00 must be positive"},
		{"zero amount", `{"amount": 0}`, 400, "must be more than zero"},
		{"negative zero", `{"amount": -0.0}`, 400, "must be more than zero"},
		{"huge amount", `{"amount": 1000000.00}`, 400, "over the maximum of 999999.99"},
		{"astronomic amount", `{"amount": 1e300}`, 400, "over the maximum"},
		{"too many decimals", `{"amount": 9.999}`, 400, "has more than 2 decimals"},
		{"tiny exponent", `{"amount": 1e-9}`, 400, "has more than 2 decimals"},
		{"customData nested object", `{"amount": 9.99, "customData": {"shop": "Opera", "meta": {"a": 1}}}`, 400, "customData.meta: is an object: only bool, int, float and string values"},
		{"customData array value", `{"amount": 9.99, "customData": {"tags": [1, 2]}}`, 400, "customData.tags: is an array"},
		{"customData null value", `{"amount": 9.99, "customData": {"x": null}}`, 400, "customData.x: is null"},
		{"customData not an object", `{"amount": 9.99, "customData": "shop"}`, 400, "customData: must be an object"},
		{"unknown currency", `{"amount": 9.99, "currency": "XYZ"}`, 400, `currency: "XYZ" is not a currency`},
		{"another currency", `{"amount": 9.99, "currency": "USD"}`, 400, `currency: "USD" is not the currency the terminal is set up for (EUR)`},
		{"numeric currency", `{"amount": 9.99, "currency": "978"}`, 400, "not an ISO 4217 alphabetic code"},
		{"currency as number", `{"amount": 9.99, "currency": 978}`, 400, "currency: must be a string"},
		{"basket as string", `{"amount": 9.99, "basket": "x"}`, 400, "basket: must be a cart object"},
		{"customer as array", `{"amount": 9.99, "customer": []}`, 400, "customer: must be an object"},
		{"yen with decimals", `{"amount": 100.5, "currency": "JPY"}`, 400, "has more than 0 decimals"},
		{"body too large", `{"amount": 9.99, "orderId": "` + strings.Repeat("x", DefaultMaxBody) + `"}`, 413, "request body over 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := a.do(http.MethodPost, "/", tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			code, msg := errCode(t, b)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("message %q lacks %q", msg, tc.want)
			}
			if code != CodeBadRequest && code != CodeTooLarge {
				t.Errorf("code %q", code)
			}
			if !strings.Contains(a.logBuf.String(), "ecr request refused") {
				t.Error("rejection not logged")
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/", strings.NewReader("amount=9.99"))
	req.SetBasicAuth(testUser, testPass)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form body: %d, want 415", resp.StatusCode)
	}
	if n := a.sim.Stats().Requests; n != 0 {
		t.Fatalf("a refused request reached the terminal (%d requests)", n)
	}
	// The API still serves after all that.
	resp2, b := a.do(http.MethodPost, "/", `{"amount": 1e1, "currency": "eur"}`)
	m := one(t, b)
	if resp2.StatusCode != http.StatusOK || m["status"] != StatusSuccess || m["amount"] != 10.0 {
		t.Fatalf("good request after bad ones: %d %s", resp2.StatusCode, b)
	}
	if q := a.sim.Stats().LastRequest; q.Amount != 1000 {
		t.Errorf("1e1 EUR reached the terminal as %d minor units", q.Amount)
	}
}
