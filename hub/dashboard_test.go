package hub

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	kiosklink "paydesk/hub/link"
	"paydesk/hub/wire"
	"paydesk/payment"
)

const testPassword = "correct horse battery"

// dash is a hub with the dashboard on an httptest server, an operator
// "ann", and kiosk K1 whose journal (an approved sale, a sale left
// unknown, a flagged sale) is replicated to it over the link.
type dash struct {
	t      *testing.T
	store  *Store
	srv    *Server
	ts     *httptest.Server
	health atomic.Pointer[map[string]string] // what K1's rails report
}

func newDash(t *testing.T, opts Options) *dash {
	t.Helper()
	store, _ := openStore(t)
	store.bcryptCost = bcrypt.MinCost // the tests' own passwords: speed over strength
	opts.Location = time.UTC
	srv := NewServer(store, opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	if err := store.AddOperator(context.Background(), "ann", testPassword); err != nil {
		t.Fatal(err)
	}
	d := &dash{t: t, store: store, srv: srv, ts: ts}
	d.health.Store(&map[string]string{"pos": "ok", "mpesa": "down: no route to Daraja"})
	return d
}

// replicate journals three sales on kiosk K1 and runs its link until the
// hub has them all.
func (d *dash) replicate() {
	t := d.t
	ctx, cancel := context.WithCancel(context.Background())
	token, err := d.store.AddKiosk(ctx, "K1")
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := payment.OpenJournal(filepath.Join(t.TempDir(), "journal.db"), payment.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	myr := func(m int64) payment.Money { return payment.Money{Minor: m, Currency: "MYR"} }
	var last int64
	for _, ev := range []payment.Event{
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: "SALE-OK", Status: payment.StatusCreated, Mode: payment.ModeCard, Amount: myr(1250)},
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: "SALE-OK", Status: payment.StatusApproved},
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: "SALE-LOST", Status: payment.StatusCreated, Mode: payment.ModeCard, Amount: myr(4990)},
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: "SALE-LOST", Status: payment.StatusSent},
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: "SALE-LOST", Status: payment.StatusUnknown},
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: "SALE-ODD", Status: payment.StatusCreated, Mode: payment.ModeCard, Amount: myr(700)},
		{Kind: payment.KindTransition, Rail: payment.RailPOS, TxnID: "SALE-ODD", Status: payment.StatusApproved, Flag: payment.FlagAmountMismatch},
	} {
		e, err := j.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		last = e.Seq
	}
	l, err := kiosklink.New(kiosklink.Options{URL: d.ts.URL, Token: token, KioskID: "K1", Journal: j, Poll: 50 * time.Millisecond,
		Version: "paydesk test-1.2", Health: func() map[string]string { return maps.Clone(*d.health.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// Generous: two test binaries share two busy cores.
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := l.WaitAcked(wctx, last); err != nil {
		t.Fatalf("the hub did not acknowledge the journal: %v", err)
	}
}

// client is an operator's browser: a cookie jar, redirects not followed.
type client struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (d *dash) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: d.t, base: d.ts.URL, c: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values, header ...string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in:\n%s", body)
	}
	return m[1]
}

// login logs in as ann with password and returns the response.
func (c *client) login(password string) (*http.Response, string) {
	c.t.Helper()
	_, body := c.get("/login")
	return c.post("/login", url.Values{"csrf": {csrfOf(c.t, body)}, "name": {"ann"}, "password": {password}})
}

func (c *client) mustLogin() string {
	c.t.Helper()
	resp, body := c.login(testPassword)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		c.t.Fatalf("login: %s %s", resp.Status, body)
	}
	_, body = c.get("/")
	return csrfOf(c.t, body)
}

func cookieOf(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var dashboardPaths = []string{"/", "/payments", "/totals", "/totals?day=2026-12-04", "/totals.csv", "/kiosks/K1"}

func TestDashboardNeedsALogin(t *testing.T) {
	d := newDash(t, Options{})
	d.replicate()
	c := d.client()
	for _, p := range dashboardPaths {
		resp, body := c.get(p)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" || strings.Contains(body, "SALE-") {
			t.Errorf("GET %s without a session: %s to %q, want 303 to /login", p, resp.Status, resp.Header.Get("Location"))
		}
	}
	// A made-up session cookie is no better.
	u, _ := url.Parse(d.ts.URL)
	c.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "made-up"}})
	for _, p := range dashboardPaths {
		if resp, _ := c.get(p); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("GET %s with a made-up session: %s, want 303", p, resp.Status)
		}
	}
	// Logged in, every page answers.
	c.mustLogin()
	for _, p := range dashboardPaths {
		if resp, body := c.get(p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s logged in: %s %s", p, resp.Status, body)
		}
	}
	// The kiosks' link still wants a kiosk token, whatever the cookies.
	req, _ := http.NewRequest("GET", d.ts.URL+wire.Path, nil)
	if resp, _ := c.do(req); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the link with an operator's session and no token: %s, want 401", resp.Status)
	}
}

func TestLogin(t *testing.T) {
	d := newDash(t, Options{})
	c := d.client()

	resp, body := c.login("wrong password!")
	if resp.StatusCode != http.StatusUnauthorized || cookieOf(resp, sessionCookie) != nil || !strings.Contains(body, "Wrong name or password") {
		t.Fatalf("wrong password: %s, session cookie %v", resp.Status, cookieOf(resp, sessionCookie))
	}
	if resp, _ := c.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after a wrong password, GET / = %s, want 303 to the login", resp.Status)
	}

	// The login form's anti-CSRF token: missing, wrong, or from another
	// origin.
	_, body = c.get("/login")
	token := csrfOf(t, body)
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "name": {"ann"}, "password": {testPassword}}
	}
	for name, f := range map[string]url.Values{"missing": form(""), "wrong": form(token + "x")} {
		if resp, _ := c.post("/login", f); resp.StatusCode != http.StatusForbidden || cookieOf(resp, sessionCookie) != nil {
			t.Errorf("login with the CSRF token %s: %s, want 403", name, resp.Status)
		}
	}
	if resp, _ := c.post("/login", form(token), "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login from another origin: %s, want 403", resp.Status)
	}

	resp, _ = c.post("/login", form(token))
	sc := cookieOf(resp, sessionCookie)
	if resp.StatusCode != http.StatusSeeOther || sc == nil {
		t.Fatalf("login: %s, session cookie %v", resp.Status, sc)
	}
	if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure {
		t.Errorf("session cookie over plain HTTP: %+v; want HttpOnly, SameSite=Strict, not Secure", sc)
	}
	// The session is in PostgreSQL under a hash, not the cookie's value.
	var n int
	if err := d.store.pool.QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE token_hash = $1`, []byte(sc.Value)).Scan(&n); err != nil || n != 0 {
		t.Errorf("the session's token is stored in clear (%d, %v)", n, err)
	}

	// Behind a TLS proxy the cookie is Secure.
	d2 := newDash(t, Options{BehindTLSProxy: true})
	resp, _ = d2.client().login(testPassword)
	if sc := cookieOf(resp, sessionCookie); sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie behind a TLS proxy: %+v; want Secure, HttpOnly, SameSite=Strict", sc)
	}
}

func TestLogoutAndExpiry(t *testing.T) {
	d := newDash(t, Options{})
	c := d.client()
	csrf := c.mustLogin()
	for name, f := range map[string]url.Values{"missing": {}, "wrong": {"csrf": {csrf + "x"}}} {
		if resp, _ := c.post("/logout", f); resp.StatusCode != http.StatusForbidden {
			t.Errorf("logout with the CSRF token %s: %s, want 403", name, resp.Status)
		}
	}
	if resp, _ := c.get("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a refused logout ended the session: %s", resp.Status)
	}
	if resp, _ := c.post("/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", resp.Status)
	}
	var n int
	d.store.pool.QueryRow(context.Background(), `SELECT count(*) FROM sessions`).Scan(&n)
	if resp, _ := c.get("/"); resp.StatusCode != http.StatusSeeOther || n != 0 {
		t.Fatalf("after logout: GET / = %s, %d sessions left", resp.Status, n)
	}

	// A session past its expiry no longer opens a page.
	c2 := d.client()
	c2.mustLogin()
	if _, err := d.store.pool.Exec(context.Background(), `UPDATE sessions SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if resp, _ := c2.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("an expired session: GET / = %s, want 303 to the login", resp.Status)
	}
	// The session lasts SessionTTL.
	d3 := newDash(t, Options{SessionTTL: 90 * time.Minute})
	resp, _ := d3.client().login(testPassword)
	if sc := cookieOf(resp, sessionCookie); sc == nil || sc.MaxAge != 90*60 {
		t.Fatalf("session cookie %+v, want Max-Age 5400", sc)
	}
	var left time.Duration
	d3.store.pool.QueryRow(context.Background(), `SELECT extract(epoch FROM expires_at - created_at)::bigint * interval '1 second' FROM sessions`).Scan(&left)
	if left != 90*time.Minute {
		t.Fatalf("session stored for %s, want 1h30m", left)
	}
}

func TestLoginFailuresAreLimited(t *testing.T) {
	d := newDash(t, Options{})
	c := d.client()
	for i := range loginFailureLimit {
		if resp, _ := c.login(fmt.Sprintf("wrong password %d", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %s", i+1, resp.Status)
		}
	}
	// Now even the right password is refused until the window passes.
	resp, body := c.login(testPassword)
	if resp.StatusCode != http.StatusTooManyRequests || cookieOf(resp, sessionCookie) != nil || !strings.Contains(body, "Too many failed logins") {
		t.Fatalf("after %d failures: %s, want 429 and no session", loginFailureLimit, resp.Status)
	}
	// The failures are in PostgreSQL, so another replica refuses too.
	other := NewServer(d.store, Options{})
	ts := httptest.NewServer(other.Handler())
	defer ts.Close()
	c2 := d.client()
	c2.base = ts.URL
	if resp, _ := c2.login(testPassword); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("another replica after %d failures: %s, want 429", loginFailureLimit, resp.Status)
	}
}

func TestDashboardShowsTheFleet(t *testing.T) {
	d := newDash(t, Options{})
	d.replicate()
	c := d.client()
	c.mustLogin()

	_, body := c.get("/")
	for _, want := range []string{`href="/kiosks/K1"`, "paydesk test-1.2", "pos: ok", "mpesa: down: no route to Daraja"} {
		if !strings.Contains(body, want) {
			t.Errorf("kiosks page lacks %q:\n%s", want, body)
		}
	}
	_, body = c.get("/payments")
	rows := regexp.MustCompile(`(?s)<tr class="payment">(.*?)</tr>`).FindAllStringSubmatch(body, -1)
	if len(rows) != 2 {
		t.Fatalf("payments page: %d rows, want the unknown and the flagged sale:\n%s", len(rows), body)
	}
	// Newest first: the flagged sale was journaled after the unknown one.
	for i, want := range [][]string{{"SALE-ODD", ">K1<", "amount_mismatch", "RM7.00"}, {"SALE-LOST", ">K1<", ">unknown<", "RM49.90"}} {
		for _, w := range want {
			if !strings.Contains(rows[i][1], w) {
				t.Errorf("payment row %d lacks %q: %s", i, w, rows[i][1])
			}
		}
	}
	if strings.Contains(body, "SALE-OK") {
		t.Errorf("the approved, unflagged sale is listed:\n%s", body)
	}
	_, body = c.get("/kiosks/K1")
	for _, want := range []string{"SALE-LOST", "SALE-ODD", "paydesk test-1.2", `id="lag">0<`} {
		if !strings.Contains(body, want) {
			t.Errorf("kiosk page lacks %q:\n%s", want, body)
		}
	}
	if resp, _ := c.get("/kiosks/NOPE"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown kiosk: %s, want 404", resp.Status)
	}
}

func TestTotalsAndCSVMatchTheReport(t *testing.T) {
	d := newDash(t, Options{})
	ctx := context.Background()
	if _, err := d.store.AddKiosk(ctx, "K2"); err != nil {
		t.Fatal(err)
	}
	// A rail whose name needs quoting in CSV, and two currencies.
	odd := func(e wire.Event) wire.Event { e.Rail = `we,ird "rail"`; return e }
	kes := sale(5, "T3", payment.StatusCreated, 150000, "KES")
	if _, _, err := d.store.Ingest(ctx, "K2", []wire.Event{
		sale(1, "T1", payment.StatusCreated, 2550, "MYR"), sale(2, "T1", payment.StatusApproved, 0, ""),
		odd(sale(3, "T2", payment.StatusCreated, 1999, "MYR")), odd(sale(4, "T2", payment.StatusDeclined, 0, "")),
		kes, sale(6, "T3", payment.StatusApproved, 0, ""),
	}); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	report, err := d.store.Report(ctx, day, day.AddDate(0, 0, 1))
	if err != nil || len(report) != 3 {
		t.Fatalf("report: %+v, %v", report, err)
	}
	c := d.client()
	c.mustLogin()

	_, body := c.get("/totals?day=2026-12-04")
	for _, r := range report {
		row := fmt.Sprintf(`<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%d</td><td class="num">%s</td>`,
			r.Kiosk, strings.ReplaceAll(string(r.Rail), `"`, "&#34;"), r.Amount.Currency, r.Status, r.Count, r.Amount.Decimal())
		if !strings.Contains(body, row) {
			t.Errorf("totals page lacks the report's row %s:\n%s", row, body)
		}
	}
	if !strings.Contains(body, "Approved, all kiosks: RM25.50") || !strings.Contains(body, "Approved, all kiosks: KES 1500.00") {
		t.Errorf("totals page lacks the approved sums:\n%s", body)
	}

	resp, body := c.get("/totals.csv?day=2026-12-04")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv; charset=utf-8") ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="paydesk-totals-2026-12-04.csv"` {
		t.Fatalf("CSV: %s, %q, %q", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	if !strings.Contains(body, "\r\n") || !strings.Contains(body, `"we,ird ""rail"""`) {
		t.Errorf("CSV is not RFC 4180 (CRLF, quoted fields):\n%q", body)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, body)
	}
	want := [][]string{{"day", "kiosk", "rail", "currency", "status", "count", "amount"}}
	for _, r := range report {
		want = append(want, []string{"2026-12-04", r.Kiosk, string(r.Rail), r.Amount.Currency, string(r.Status), strconv.FormatInt(r.Count, 10), r.Amount.Decimal()})
	}
	if fmt.Sprintf("%q", recs) != fmt.Sprintf("%q", want) {
		t.Fatalf("CSV:\n got %q\nwant %q", recs, want)
	}
	// Amounts are major units: 2550 minor is "25.50", 150000 KES cents "1500.00".
	var b bytes.Buffer
	WriteReportCSV(&b, day, report)
	if b.String() != body || !strings.Contains(body, ",25.50\r\n") || !strings.Contains(body, ",1500.00\r\n") {
		t.Fatalf("CSV differs from WriteReportCSV or amounts are not major units:\n%s", body)
	}
}

// Behind a TLS proxy, the limit per address uses the address the proxy
// adds to X-Forwarded-For, so one client's failures do not lock out the
// others that share the proxy.
func TestLoginLimitBehindAProxy(t *testing.T) {
	d := newDash(t, Options{BehindTLSProxy: true})
	attempt := func(from, name, password string) int {
		c := d.client()
		_, body := c.get("/login")
		resp, _ := c.post("/login", url.Values{"csrf": {csrfOf(t, body)}, "name": {name}, "password": {password}},
			"X-Forwarded-For", "203.0.113.9, "+from)
		return resp.StatusCode
	}
	for i := range loginFailureLimit {
		if code := attempt("198.51.100.1", fmt.Sprintf("guess%d", i), "wrong password"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	if code := attempt("198.51.100.1", "ann", testPassword); code != http.StatusTooManyRequests {
		t.Fatalf("the failing address, right password: %d, want 429", code)
	}
	if code := attempt("198.51.100.2", "ann", testPassword); code != http.StatusSeeOther {
		t.Fatalf("another address behind the same proxy: %d, want 303 (logged in)", code)
	}
}

// While connected, a kiosk reports its rails' health when it changes and
// its journal's last sequence, so the dashboard's lag is current.
func TestStatusFramesKeepTheKioskCurrent(t *testing.T) {
	d := newDash(t, Options{StatusEvery: time.Second})
	d.replicate()
	ctx := context.Background()
	d.health.Store(&map[string]string{"pos": "ok", "mpesa": "ok"})
	kiosk := func() Kiosk {
		ks, err := d.store.Kiosks(ctx)
		if err != nil || len(ks) != 1 {
			t.Fatalf("kiosks: %+v, %v", ks, err)
		}
		return ks[0]
	}
	// Generous: a status frame is due within a second; the machine is busy.
	deadline := time.Now().Add(time.Minute)
	for k := kiosk(); k.Rails["mpesa"] != "ok"; k = kiosk() {
		if time.Now().After(deadline) {
			t.Fatalf("the hub still has the rails of the hello: %v", k.Rails)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A kiosk ahead of the hub by 5 events shows a lag of 5.
	k := kiosk()
	if err := d.store.Status(ctx, "K1", k.AckedSeq+5, nil); err != nil {
		t.Fatal(err)
	}
	if k = kiosk(); k.Lag() != 5 || k.Rails["mpesa"] != "ok" {
		t.Fatalf("after a status 5 ahead: lag %d, rails %v", k.Lag(), k.Rails)
	}
	c := d.client()
	c.mustLogin()
	if _, body := c.get("/kiosks/K1"); !strings.Contains(body, `id="lag">5<`) {
		t.Fatalf("kiosk page does not show the lag of 5:\n%s", body)
	}
}

// Served over TLS the session cookie is Secure; a session made on one
// replica opens the dashboard on another (both on one database).
func TestSessionsOverTLSAndAcrossReplicas(t *testing.T) {
	d := newDash(t, Options{})
	tlsSrv := httptest.NewTLSServer(NewServer(d.store, Options{}).Handler())
	defer tlsSrv.Close()
	c := d.client()
	c.base = tlsSrv.URL
	c.c.Transport = tlsSrv.Client().Transport
	resp, _ := c.login(testPassword)
	sc := cookieOf(resp, sessionCookie)
	if resp.StatusCode != http.StatusSeeOther || sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login over TLS: %s, cookie %+v; want Secure, HttpOnly, SameSite=Strict", resp.Status, sc)
	}
	// The same session on the plain replica d.ts.
	other := d.client()
	u, _ := url.Parse(d.ts.URL)
	other.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: sc.Value}})
	if resp, body := other.get("/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "<h1>Kiosks</h1>") {
		t.Fatalf("the session on another replica: %s", resp.Status)
	}
}
