package hub

import (
	"crypto/subtle"
	"embed"
	"encoding/csv"
	"errors"
	"html/template"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"paydesk/payment"
)

//go:embed dashboard/*.html
var dashboardFiles embed.FS

// railHealthy says whether a rail's health, as a kiosk reports it, is
// good: "ok", or "ok" and a detail ("ok (2 POS connected)"); anything
// else says what is wrong.
func railHealthy(h string) bool { return h == "ok" || strings.HasPrefix(h, "ok ") }

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"join":    strings.Join,
	"healthy": railHealthy,
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
}).ParseFS(dashboardFiles, "dashboard/*.html"))

// Cookie names. The session cookie holds a random token; the login cookie
// holds the login form's anti-CSRF token before there is a session.
const (
	sessionCookie = "paydesk_session"
	loginCookie   = "paydesk_login"
)

// Login limits: after this many failures in the window, for one operator
// name or one client address, logins are refused until the window passes.
const (
	loginFailureLimit  = 5
	loginFailureWindow = 15 * time.Minute
)

// secure reports whether the operator's browser reaches the hub over TLS:
// the hub serves TLS itself, or Options.BehindTLSProxy says a proxy does.
func (s *Server) secure(r *http.Request) bool { return r.TLS != nil || s.opts.BehindTLSProxy }

// dashboard adds the operators' pages to mux. Each page but the login
// needs a session; each POST needs the session's (or the login form's)
// anti-CSRF token and a same-origin request.
func (s *Server) dashboard(mux *http.ServeMux) {
	cop := http.NewCrossOriginProtection()
	post := func(h http.HandlerFunc) http.Handler { return cop.Handler(h) }
	mux.HandleFunc("GET /login", s.loginPage)
	mux.Handle("POST /login", post(s.login))
	mux.Handle("POST /logout", post(s.operator(s.logout)))
	mux.HandleFunc("GET /{$}", s.operator(s.kiosksPage))
	mux.HandleFunc("GET /kiosks/{id}", s.operator(s.kioskPage))
	mux.HandleFunc("GET /payments", s.operator(s.paymentsPage))
	mux.HandleFunc("GET /totals", s.operator(s.totalsPage))
	mux.HandleFunc("GET /totals.csv", s.operator(s.totalsCSV))
	mux.HandleFunc("GET /unmatched/{id}", s.operator(s.unmatchedPage))
	mux.Handle("POST /unmatched/{id}/assign", post(s.operator(s.assign)))
}

type operatorHandler func(w http.ResponseWriter, r *http.Request, sess Session, token string)

// operator lets through requests with a live session; a POST also needs
// the session's anti-CSRF token in the form field "csrf". Others go to the
// login page (a GET) or get 403 (a POST).
func (s *Server) operator(h operatorHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		c, err := r.Cookie(sessionCookie)
		var sess Session
		if err == nil {
			sess, err = s.store.SessionOf(r.Context(), c.Value)
		}
		if err != nil {
			if !errors.Is(err, ErrNoSession) && !errors.Is(err, http.ErrNoCookie) {
				s.log.Error("hub dashboard: reading a session", "err", err)
				http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
				return
			}
			if r.Method == http.MethodPost {
				http.Error(w, "not logged in", http.StatusForbidden)
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !sameToken(r.PostFormValue("csrf"), sess.CSRF) {
			s.reject(r.RemoteAddr, "", "dashboard: missing or wrong anti-CSRF token", nil)
			http.Error(w, "missing or wrong anti-CSRF token", http.StatusForbidden)
			return
		}
		h(w, r, sess, c.Value)
	}
}

func sameToken(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secure(r)})
}

func (s *Server) render(w http.ResponseWriter, name string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		s.log.Warn("hub dashboard: render", "page", name, "err", err)
	}
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.loginForm(w, r, http.StatusOK, "")
}

// loginForm shows the login form with a fresh anti-CSRF token, also set
// in the login cookie (the form's field must match the cookie).
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, code int, problem string) {
	token, err := randomToken()
	if err != nil {
		http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.setCookie(w, r, loginCookie, token, 600)
	w.WriteHeader(code)
	s.render(w, "login.html", map[string]any{"CSRF": token, "Problem": problem})
}

// clientAddr is the operator's address for the login limit: behind a TLS
// proxy, the last address of X-Forwarded-For (the one the proxy added),
// else the connection's.
func (s *Server) clientAddr(r *http.Request) string {
	if s.opts.BehindTLSProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if a := strings.TrimSpace(parts[len(parts)-1]); a != "" {
				return a
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostFormValue("csrf"), c.Value) {
		s.reject(r.RemoteAddr, "", "dashboard login: missing or wrong anti-CSRF token", nil)
		http.Error(w, "missing or wrong anti-CSRF token: reload the login page", http.StatusForbidden)
		return
	}
	ctx := r.Context()
	name, password := r.PostFormValue("name"), r.PostFormValue("password")
	keys := []string{"operator:" + name, "addr:" + s.clientAddr(r)}
	n, err := s.store.LoginFailures(ctx, s.store.now().Add(-loginFailureWindow), keys...)
	if err != nil {
		s.log.Error("hub dashboard: login", "err", err)
		http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
		return
	}
	if n >= loginFailureLimit {
		s.reject(r.RemoteAddr, "", "dashboard login: too many failures", nil)
		w.Header().Set("Retry-After", strconv.Itoa(int(loginFailureWindow.Seconds())))
		s.loginForm(w, r, http.StatusTooManyRequests, "Too many failed logins: try again in 15 minutes.")
		return
	}
	err = s.store.CheckPassword(ctx, name, password)
	if errors.Is(err, ErrBadLogin) {
		if err := s.store.RecordLoginFailure(ctx, keys...); err != nil {
			s.log.Error("hub dashboard: login", "err", err)
		}
		s.reject(r.RemoteAddr, "", "dashboard login: wrong name or password", nil)
		s.loginForm(w, r, http.StatusUnauthorized, "Wrong name or password.")
		return
	}
	if err != nil {
		s.log.Error("hub dashboard: login", "err", err)
		http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
		return
	}
	token, _, err := s.store.NewSession(ctx, name, s.opts.SessionTTL)
	if err != nil {
		s.log.Error("hub dashboard: login", "err", err)
		http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
		return
	}
	s.log.Info("hub dashboard: operator logged in", "operator", name, "remote", r.RemoteAddr)
	s.setCookie(w, r, loginCookie, "", -1)
	s.setCookie(w, r, sessionCookie, token, int(s.opts.SessionTTL.Seconds()))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess Session, token string) {
	if err := s.store.EndSession(r.Context(), token); err != nil {
		s.log.Error("hub dashboard: logout", "err", err)
		http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
		return
	}
	s.log.Info("hub dashboard: operator logged out", "operator", sess.Operator)
	s.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	s.log.Error("hub dashboard", "err", err)
	http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
}

func page(sess Session, title string) map[string]any {
	return map[string]any{"Operator": sess.Operator, "CSRF": sess.CSRF, "Title": title}
}

func (s *Server) kiosksPage(w http.ResponseWriter, r *http.Request, sess Session, _ string) {
	ks, err := s.store.Kiosks(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	d := page(sess, "Kiosks")
	d["Kiosks"] = ks
	s.render(w, "kiosks.html", d)
}

func (s *Server) kioskPage(w http.ResponseWriter, r *http.Request, sess Session, _ string) {
	id := r.PathValue("id")
	ks, err := s.store.Kiosks(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	for _, k := range ks {
		if k.ID != id {
			continue
		}
		att, err := s.store.NeedsAttention(r.Context(), id, 200)
		if err != nil {
			s.fail(w, err)
			return
		}
		d := page(sess, "Kiosk "+id)
		d["Kiosk"], d["Payments"] = k, att
		s.render(w, "kiosk.html", d)
		return
	}
	http.NotFound(w, r)
}

func (s *Server) paymentsPage(w http.ResponseWriter, r *http.Request, sess Session, _ string) {
	att, err := s.store.NeedsAttention(r.Context(), "", 500)
	if err != nil {
		s.fail(w, err)
		return
	}
	un, err := s.store.UnmatchedCallbacks(r.Context(), 500)
	if err != nil {
		s.fail(w, err)
		return
	}
	as, err := s.store.Assigned(r.Context(), 100)
	if err != nil {
		s.fail(w, err)
		return
	}
	d := page(sess, "Unknown and flagged payments")
	d["Payments"] = att
	d["Unmatched"] = un
	d["Assigned"] = as
	s.render(w, "payments.html", d)
}

// day reads ?day=YYYY-MM-DD in the hub's zone (today by default).
func (s *Server) day(r *http.Request) (from, to time.Time, err error) {
	when := s.store.now().In(s.opts.Location)
	if d := r.URL.Query().Get("day"); d != "" {
		if when, err = time.ParseInLocation("2006-01-02", d, s.opts.Location); err != nil {
			return from, to, errors.New("day: want YYYY-MM-DD")
		}
	}
	from, to = payment.Day(when)
	return from, to, nil
}

func (s *Server) totalsPage(w http.ResponseWriter, r *http.Request, sess Session, _ string) {
	from, to, err := s.day(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rows, err := s.store.Report(r.Context(), from, to)
	if err != nil {
		s.fail(w, err)
		return
	}
	d := page(sess, "Totals")
	d["Day"], d["Rows"], d["Approved"] = from.Format("2006-01-02"), rows, ApprovedTotals(rows)
	d["Zone"] = from.Format("MST, UTC-07:00")
	s.render(w, "totals.html", d)
}

func (s *Server) totalsCSV(w http.ResponseWriter, r *http.Request, _ Session, _ string) {
	from, to, err := s.day(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rows, err := s.store.Report(r.Context(), from, to)
	if err != nil {
		s.fail(w, err)
		return
	}
	day := from.Format("2006-01-02")
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="paydesk-totals-`+day+`.csv"`)
	if err := WriteReportCSV(w, from, rows); err != nil {
		s.log.Warn("hub dashboard: CSV", "err", err)
	}
}

// WriteReportCSV writes a day's totals as CSV (RFC 4180: CRLF line ends,
// quoted as needed, UTF-8): a header row, then one row per kiosk, rail,
// currency and status; amounts are decimal strings in the currency's major
// units ("1470.00"), beside the currency's code.
func WriteReportCSV(w io.Writer, day time.Time, rows []ReportRow) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	d := day.Format("2006-01-02")
	cw.Write([]string{"day", "kiosk", "rail", "currency", "status", "count", "amount"})
	for _, r := range rows {
		cw.Write([]string{d, r.Kiosk, string(r.Rail), r.Amount.Currency, string(r.Status), strconv.FormatInt(r.Count, 10), r.Amount.Decimal()})
	}
	cw.Flush()
	return cw.Error()
}

// ApprovedTotals sums the approved rows per currency, in the rows' order
// of first appearance.
func ApprovedTotals(rows []ReportRow) []payment.Money {
	var out []payment.Money
	idx := map[string]int{}
	for _, r := range rows {
		if r.Status != payment.StatusApproved {
			continue
		}
		i, ok := idx[r.Amount.Currency]
		if !ok {
			i = len(out)
			idx[r.Amount.Currency] = i
			out = append(out, payment.Money{Currency: r.Amount.Currency})
		}
		out[i].Minor += r.Amount.Minor
	}
	return out
}
