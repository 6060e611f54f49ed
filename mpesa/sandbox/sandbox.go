// Package sandbox is a fake Daraja for tests, the demo and 'paydesk sim
// daraja': OAuth with expiring tokens, STK Push with Daraja's own input
// checks, callbacks delivered from its own goroutines to the CallBackURL,
// STK Push Query (pending, then final), C2B Register URL and C2B
// payments sent to the registered URLs.
//
// A push's outcome comes from the phone number's last four digits (see
// Outcomes), or from Next for the next push. Knobs simulate what the real
// Daraja does on a bad day: late, duplicate, dropped or reordered
// callbacks, wrong amounts, tokens that expire or are revoked, Spike
// Arrest, HTML and empty errors, and a push answered too late.
package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"paydesk/mpesa/daraja"
)

// The public sandbox values (Daraja's own samples).
const (
	DefaultShortCode = "174379"
	DefaultPasskey   = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
	DefaultKey       = "paydesk-demo-key"
	DefaultSecret    = "paydesk-demo-secret"
	// TestPhone is Daraja's sandbox MSISDN: it pays.
	TestPhone = "254708374149"
)

// Outcomes documents what a push does by the phone number's last four
// digits, like card test numbers.
const Outcomes = `last 4 digits of the phone → outcome
  0001  insufficient funds (ResultCode 1)
  0017  same amount within 2 minutes (17)
  1001  phone busy in another session (1001)
  1019  prompt expired (1019)
  1032  customer cancelled (1032)
  1037  phone unreachable (1037), after the prompt lifetime
  2001  wrong PIN (2001)
  2028  not permitted for the shortcode (2028)
  8006  PIN locked (8006)
  0002  paid, callback delivered 3 times at once
  0404  paid, callback never sent (only the query tells)
  0099  paid one shilling less than asked
  other paid (0), e.g. the sandbox test number (…149)`

// Outcome is what happens to one push.
type Outcome struct {
	// Code is the ResultCode ("0" pays).
	Code string
	// Delay is how long the customer takes; 0 means Options.PromptDelay.
	Delay time.Duration
	// Duplicates sends the callback this many extra times, concurrently.
	Duplicates int
	// Drop sends no callback: only the query knows the outcome.
	Drop bool
	// ReorderBeforeAck delivers the callback before the push is answered.
	ReorderBeforeAck bool
	// PaidAmount, when set, is the callback's Amount as written ("99.00");
	// "-1" pays one shilling less than the push asked.
	PaidAmount string
	// QueryDisagrees makes the query report 1032 after a success callback
	// (the public sandbox's quirk).
	QueryDisagrees bool
	// SlowAnswer holds the push's HTTP answer this long after the push
	// took effect (past the client's timeout: a lost response).
	SlowAnswer time.Duration
	// Fault spoils the push's answer: "html503" (a gateway page, after
	// the push took effect), "reset" (the connection is dropped after
	// the push took effect) or "empty400" (an empty 400, nothing done).
	Fault string
}

var phoneOutcomes = map[string]Outcome{
	"0001": {Code: "1"}, "0017": {Code: "17"}, "1001": {Code: "1001"}, "1019": {Code: "1019"},
	"1032": {Code: "1032"}, "1037": {Code: "1037"}, "2001": {Code: "2001"}, "2028": {Code: "2028"},
	"8006": {Code: "8006"}, "0002": {Code: "0", Duplicates: 2}, "0404": {Code: "0", Drop: true},
	"0099": {Code: "0", PaidAmount: "-1"},
}

var resultDescs = map[string]string{
	"0":    "The service request is processed successfully.",
	"1":    "The balance is insufficient for the transaction.",
	"17":   "Rule limited.",
	"1001": "Unable to lock subscriber, a transaction is already in process for the current subscriber",
	"1019": "Transaction has expired",
	"1032": "Request cancelled by user",
	"1037": "DS timeout user cannot be reached",
	"2001": "The initiator information is invalid.",
	"2028": "The request is not permitted according to product assignment",
	"8006": "The security credential is locked",
}

// resultDesc is the ResultDesc Daraja writes with code.
func resultDesc(code string) string {
	if d, ok := resultDescs[code]; ok {
		return d
	}
	return "Result " + code
}

// DefaultAddr is where the fake listens unless Options.Addr says.
const DefaultAddr = "127.0.0.1:8090"

// Options configure the fake.
type Options struct {
	// Addr is what Listen binds. The default is DefaultAddr.
	Addr                        string
	ConsumerKey, ConsumerSecret string
	ShortCode, Passkey          string
	// TillNumber is the PartyB a Buy Goods push must name.
	TillNumber string
	// TokenTTL is the life of a token. The default is 3599 s.
	TokenTTL time.Duration
	// InvalidateOld makes each new token revoke the previous ones.
	InvalidateOld bool
	// PromptDelay is how long the virtual customer takes. The default is 2 s.
	PromptDelay time.Duration
	// PromptTTL is when an unanswered prompt (1037) ends. The default is 5 s.
	PromptTTL time.Duration
	// QueryRate caps STK queries per second (Spike Arrest); 0 is no cap.
	QueryRate int
	// C2BVersion is the API product on the app: "v1", "v2" (the default)
	// or "any".
	C2BVersion string
	// Production makes C2B registration one-shot.
	Production bool
	// Validation sends C2B validation requests before confirmations.
	Validation bool
	// RetryOnNon200 re-sends a callback answered with another status, up
	// to 3 times.
	RetryOnNon200 bool
	// HTTP delivers callbacks; the default has a 10 s timeout.
	HTTP *http.Client
	// PlainMSISDN sends C2B MSISDNs in full; by default they are masked
	// the v2 way ("2547 ***** 149").
	PlainMSISDN bool
	// HashMSISDN sends C2B MSISDNs as SHA-256 hex, as some C2B feeds do.
	HashMSISDN bool
	Now        func() time.Time
	Logger     *slog.Logger
}

// Counts are the calls the fake has answered.
type Counts struct {
	OAuth, Push, Query int
}

// Server is the fake Daraja. Serve Handler over HTTP.
type Server struct {
	opt Options
	log *slog.Logger

	mu       sync.Mutex
	tokens   map[string]time.Time
	pushes   map[string]*push
	order    []pushRef // pushes by arrival, to forget the old ones
	next     []Outcome
	counts   Counts
	urls     map[string]string // "confirmation", "validation"
	window   time.Time
	inWindow int
	wg       sync.WaitGroup
	closed   chan struct{}
	seq      int
}

// PushMemory is how long, on its clock, the fake remembers a push for
// queries; older ones are forgotten, so a long run stays in bounded
// memory.
const PushMemory = 24 * time.Hour

// pushRef is a push's place in the order pushes came in.
type pushRef struct {
	checkout string
	at       time.Time
}

type push struct {
	merchant, checkout string
	amount             int64
	phone, ref         string
	callback           string
	out                Outcome
	resolveAt          time.Time
	receipt            string
}

// New returns a fake Daraja with the public sandbox shortcode and
// passkey and the demo credentials unless opt says otherwise.
func New(opt Options) *Server {
	if opt.ConsumerKey == "" {
		opt.ConsumerKey, opt.ConsumerSecret = DefaultKey, DefaultSecret
	}
	if opt.ShortCode == "" {
		opt.ShortCode, opt.Passkey = DefaultShortCode, DefaultPasskey
	}
	if opt.TokenTTL <= 0 {
		opt.TokenTTL = 3599 * time.Second
	}
	if opt.PromptDelay <= 0 {
		opt.PromptDelay = 2 * time.Second
	}
	if opt.PromptTTL <= 0 {
		opt.PromptTTL = 5 * time.Second
	}
	if opt.C2BVersion == "" {
		opt.C2BVersion = "v2"
	}
	if opt.Addr == "" {
		opt.Addr = DefaultAddr
	}
	if opt.HTTP == nil {
		opt.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{opt: opt, log: opt.Logger, tokens: map[string]time.Time{}, pushes: map[string]*push{},
		urls: map[string]string{}, closed: make(chan struct{})}
}

// Next sets the outcome of the next push, whatever its phone number.
// Calls queue: each push takes the oldest.
func (s *Server) Next(o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = append(s.next, o)
}

// Counts returns the calls answered so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// RevokeTokens makes every token issued so far invalid (as when Daraja
// invalidates a token before its expiry).
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Close stops a running Serve and waits for the callbacks in flight;
// later ones are not sent. It may be called without Serve (a fake served
// through Handler) and more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Handler serves Daraja's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/v1/generate", s.oauth)
	mux.HandleFunc("/mpesa/stkpush/v1/processrequest", s.stkPush)
	mux.HandleFunc("/mpesa/stkpushquery/v1/query", s.stkQuery)
	mux.HandleFunc("/mpesa/c2b/{version}/registerurl", s.register)
	mux.HandleFunc("/mpesa/c2b/{version}/simulate", s.simulate)
	mux.HandleFunc("POST /sandbox/c2b", s.control)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, http.StatusNotFound, "404.001.01", "Resource not found")
	})
	return mux
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"requestId": randHex(6) + "-" + randHex(4), "errorCode": code, "errorMessage": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) oauth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.fail(w, http.StatusMethodNotAllowed, "405.001", "Method Not Allowed")
		return
	}
	if r.URL.Query().Get("grant_type") != "client_credentials" {
		s.fail(w, http.StatusBadRequest, "400.008.02", "Invalid grant type passed")
		return
	}
	k, sec, ok := r.BasicAuth()
	if !ok {
		s.fail(w, http.StatusBadRequest, "400.008.01", "Invalid Authentication passed")
		return
	}
	s.mu.Lock()
	s.counts.OAuth++
	if k != s.opt.ConsumerKey || sec != s.opt.ConsumerSecret {
		s.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest) // Daraja: an empty 400
		return
	}
	tok := base64.RawURLEncoding.EncodeToString([]byte(randHex(12)))
	if s.opt.InvalidateOld {
		clear(s.tokens)
	}
	s.tokens[tok] = s.opt.Now().Add(s.opt.TokenTTL)
	s.mu.Unlock()
	writeJSON(w, map[string]string{"access_token": tok, "expires_in": strconv.Itoa(int(s.opt.TokenTTL / time.Second))})
}

// authorise checks the method, the token and the content type, the way
// Daraja does, and answers the error itself.
func (s *Server) authorise(w http.ResponseWriter, r *http.Request, invalidCode string) bool {
	if r.Method != http.MethodPost {
		s.fail(w, http.StatusNotFound, "404.001.04", "Invalid Authentication Header")
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, known := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !known || !s.opt.Now().Before(exp) {
		s.fail(w, http.StatusNotFound, invalidCode, "Invalid Access Token")
		return false
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		s.fail(w, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid BusinessShortCode")
		return false
	}
	return true
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.UseNumber()
	return dec.Decode(v)
}

var (
	reMSISDN = regexp.MustCompile(`^254[17]\d{8}$`)
	reTS     = regexp.MustCompile(`^\d{14}$`)
	reAlnum  = regexp.MustCompile(`^[A-Za-z0-9]{1,12}$`)
)

type pushWire struct {
	BusinessShortCode daraja.Flex
	Password          string
	Timestamp         daraja.Flex
	TransactionType   string
	Amount            daraja.Flex
	PartyA            daraja.Flex
	PartyB            daraja.Flex
	PhoneNumber       daraja.Flex
	CallBackURL       string
	AccountReference  string
	TransactionDesc   *string
}

// checkCredentials checks the shortcode, the timestamp and the Password
// built from them; it answers the error itself.
func (s *Server) checkCredentials(w http.ResponseWriter, code, ts, password string) bool {
	if code != s.opt.ShortCode {
		s.fail(w, http.StatusInternalServerError, "500.001.1001", "Merchant does not exist")
		return false
	}
	if !reTS.MatchString(ts) {
		s.fail(w, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid Timestamp")
		return false
	}
	t, err := daraja.ParseTimestamp(ts)
	if err != nil || t.Sub(s.opt.Now()).Abs() > 10*time.Minute {
		s.fail(w, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid Timestamp")
		return false
	}
	if password != daraja.Password(code, s.opt.Passkey, ts) {
		s.fail(w, http.StatusInternalServerError, "500.001.1001", "Wrong credentials")
		return false
	}
	return true
}

func (s *Server) stkPush(w http.ResponseWriter, r *http.Request) {
	if !s.authorise(w, r, "404.001.03") {
		return
	}
	var p pushWire
	if err := decode(r, &p); err != nil {
		s.fail(w, http.StatusBadRequest, "400.002.05", "Invalid request payload")
		return
	}
	if !s.checkCredentials(w, string(p.BusinessShortCode), string(p.Timestamp), p.Password) {
		return
	}
	bad := func(field string) { s.fail(w, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid "+field) }
	amount, err := strconv.ParseInt(string(p.Amount), 10, 64)
	switch {
	case p.TransactionType != daraja.PayBillOnline && p.TransactionType != daraja.BuyGoodsOnline:
		bad("TransactionType")
	case err != nil || amount < daraja.MinAmount || amount > daraja.MaxAmount:
		bad("Amount")
	case !reMSISDN.MatchString(string(p.PartyA)):
		bad("PartyA")
	case !reMSISDN.MatchString(string(p.PhoneNumber)):
		bad("PhoneNumber")
	case p.TransactionType == daraja.PayBillOnline && string(p.PartyB) != s.opt.ShortCode,
		p.TransactionType == daraja.BuyGoodsOnline && (s.opt.TillNumber == "" || string(p.PartyB) != s.opt.TillNumber):
		bad("PartyB")
	case !validURL(p.CallBackURL):
		bad("CallBackURL")
	case !reAlnum.MatchString(p.AccountReference):
		bad("AccountReference")
	case p.TransactionDesc != nil && len(*p.TransactionDesc) > daraja.MaxTransactionDesc:
		bad("TransactionDesc")
	default:
		s.accept(w, r, p, amount)
	}
}

func validURL(u string) bool {
	return (strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) && len(u) > len("https://") && !strings.ContainsAny(u, " \t\n")
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request, p pushWire, amount int64) {
	phone := string(p.PhoneNumber)
	s.mu.Lock()
	s.counts.Push++
	s.seq++
	out, ok := Outcome{}, false
	if len(s.next) > 0 {
		out, ok, s.next = s.next[0], true, s.next[1:]
	}
	if !ok {
		out, ok = phoneOutcomes[phone[len(phone)-4:]]
		if !ok {
			out = Outcome{Code: "0"}
		}
	}
	if out.Fault == "empty400" {
		s.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	now := s.opt.Now()
	pu := &push{merchant: fmt.Sprintf("%d-%s-1", 29115+s.seq, randHex(4)),
		checkout: "ws_CO_" + daraja.Timestamp(now) + randHex(5), amount: amount, phone: phone,
		ref: p.AccountReference, callback: p.CallBackURL, out: out}
	delay := out.Delay
	if delay <= 0 {
		delay = s.opt.PromptDelay
		if out.Code == "1037" {
			delay = s.opt.PromptTTL
		}
	}
	if out.ReorderBeforeAck {
		delay = 0
	}
	pu.resolveAt = now.Add(delay)
	if out.Code == "0" {
		pu.receipt = receipt()
	}
	s.pushes[pu.checkout] = pu
	s.order = append(s.order, pushRef{checkout: pu.checkout, at: now})
	for len(s.order) > 0 && now.Sub(s.order[0].at) > PushMemory {
		delete(s.pushes, s.order[0].checkout)
		s.order = s.order[1:]
	}
	s.mu.Unlock()
	s.log.Info("sandbox push", "checkout", pu.checkout, "code", out.Code, "amount", amount)

	sent := make(chan struct{})
	if !out.Drop {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if out.ReorderBeforeAck {
				s.deliver(pu)
				close(sent)
				return
			}
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
				s.deliver(pu)
			case <-s.closed:
			}
		}()
	} else {
		close(sent)
	}
	if out.ReorderBeforeAck {
		select {
		case <-sent:
		case <-r.Context().Done():
		}
	}
	if out.SlowAnswer > 0 {
		select {
		case <-time.After(out.SlowAnswer):
		case <-r.Context().Done():
			return
		}
	}
	if out.Fault == "reset" {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	if out.Fault == "html503" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "<html><body><h1>503 Service Unavailable</h1></body></html>")
		return
	}
	writeJSON(w, map[string]string{"MerchantRequestID": pu.merchant, "CheckoutRequestID": pu.checkout,
		"ResponseCode": "0", "ResponseDescription": "Success. Request accepted for processing",
		"CustomerMessage": "Success. Request accepted for processing"})
}

func receipt() string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// callbackBody writes the STK callback the way Daraja does: ResultCode a
// number, Amount a number with decimals, Balance without a Value.
func (s *Server) callbackBody(pu *push) []byte {
	code := pu.out.Code
	desc := resultDesc(code)
	var meta string
	if code == "0" {
		amount := strconv.FormatInt(pu.amount, 10) + ".00"
		switch pu.out.PaidAmount {
		case "":
		case "-1":
			amount = strconv.FormatInt(pu.amount-1, 10) + ".00"
		default:
			amount = pu.out.PaidAmount
		}
		meta = fmt.Sprintf(`,"CallbackMetadata":{"Item":[{"Name":"Amount","Value":%s},{"Name":"MpesaReceiptNumber","Value":"%s"},{"Name":"Balance"},{"Name":"TransactionDate","Value":%s},{"Name":"PhoneNumber","Value":%s}]}`,
			amount, pu.receipt, daraja.Timestamp(s.opt.Now()), pu.phone)
	}
	c, _ := strconv.Atoi(code)
	return fmt.Appendf(nil, `{"Body":{"stkCallback":{"MerchantRequestID":"%s","CheckoutRequestID":"%s","ResultCode":%d,"ResultDesc":"%s"%s}}}`,
		pu.merchant, pu.checkout, c, desc, meta)
}

// deliver posts the callback (and its duplicates, concurrently).
func (s *Server) deliver(pu *push) {
	body := s.callbackBody(pu)
	n := 1 + pu.out.Duplicates
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.post(pu.callback, body)
		}()
	}
	wg.Wait()
}

// post sends one callback, retrying on another status than 200 when
// RetryOnNon200 is set.
func (s *Server) post(url string, body []byte) int {
	tries := 1
	if s.opt.RetryOnNon200 {
		tries = 4
	}
	status := 0
	for i := range tries {
		if i > 0 {
			select {
			case <-time.After(time.Duration(i) * 200 * time.Millisecond):
			case <-s.closed:
				return status
			}
		}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.opt.HTTP.Do(req)
		if err != nil {
			s.log.Info("sandbox callback failed", "err", err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		if status == http.StatusOK {
			return status
		}
	}
	return status
}

func (s *Server) stkQuery(w http.ResponseWriter, r *http.Request) {
	if !s.authorise(w, r, "404.001.03") {
		return
	}
	var q struct {
		BusinessShortCode daraja.Flex
		Password          string
		Timestamp         daraja.Flex
		CheckoutRequestID string
	}
	if err := decode(r, &q); err != nil {
		s.fail(w, http.StatusBadRequest, "400.002.05", "Invalid request payload")
		return
	}
	now := s.opt.Now()
	s.mu.Lock()
	s.counts.Query++
	if s.opt.QueryRate > 0 {
		if now.Sub(s.window) >= time.Second {
			s.window, s.inWindow = now, 0
		}
		s.inWindow++
		if s.inWindow > s.opt.QueryRate {
			s.mu.Unlock()
			s.fail(w, http.StatusInternalServerError, "500.003.02", "Spike Arrest Violation")
			return
		}
	}
	pu := s.pushes[q.CheckoutRequestID]
	s.mu.Unlock()
	if !s.checkCredentials(w, string(q.BusinessShortCode), string(q.Timestamp), q.Password) {
		return
	}
	if pu == nil {
		s.fail(w, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid CheckoutRequestID")
		return
	}
	if now.Before(pu.resolveAt) {
		s.fail(w, http.StatusInternalServerError, "500.001.1001", "The transaction is being processed")
		return
	}
	code := pu.out.Code
	if pu.out.QueryDisagrees && code == "0" {
		code = "1032"
	}
	desc := resultDesc(code)
	writeJSON(w, map[string]string{"ResponseCode": "0", "ResponseDescription": "The service request has been accepted successsfully",
		"MerchantRequestID": pu.merchant, "CheckoutRequestID": pu.checkout, "ResultCode": code, "ResultDesc": desc})
}

var bannedWords = []string{"m-pesa", "mpesa", "safaricom", "exe", "exec", "cmd", "sql", "query"}

// product checks that C2B API version v is the product enabled on the
// app, the way Daraja does, and answers the error itself.
func (s *Server) product(w http.ResponseWriter, v string) bool {
	if s.opt.C2BVersion != "any" && v != s.opt.C2BVersion {
		s.fail(w, http.StatusUnauthorized, "401.003.01", "Invalid API call as no apiproduct match found")
		return false
	}
	return true
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	v := r.PathValue("version")
	if v != "v1" && v != "v2" {
		s.fail(w, http.StatusNotFound, "404.001.01", "Resource not found")
		return
	}
	if !s.authorise(w, r, "400.003.01") {
		return
	}
	if !s.product(w, v) {
		return
	}
	var q struct {
		ShortCode       daraja.Flex
		ResponseType    string
		ConfirmationURL string
		ValidationURL   string
	}
	if err := decode(r, &q); err != nil {
		s.fail(w, http.StatusBadRequest, "400.002.05", "Invalid request payload")
		return
	}
	bad := func(f string) { s.fail(w, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid "+f) }
	switch {
	case string(q.ShortCode) == "":
		bad("ShortCode")
		return
	case q.ResponseType != "Completed" && q.ResponseType != "Cancelled":
		bad("ResponseType")
		return
	}
	for name, u := range map[string]string{"ConfirmationURL": q.ConfirmationURL, "ValidationURL": q.ValidationURL} {
		l := strings.ToLower(u)
		if !validURL(u) {
			bad(name)
			return
		}
		for _, b := range bannedWords {
			if strings.Contains(l, b) {
				bad(name)
				return
			}
		}
	}
	s.mu.Lock()
	if s.opt.Production && s.urls["confirmation"] != "" {
		s.mu.Unlock()
		s.fail(w, http.StatusInternalServerError, "500.003.1001", "Urls are already registered")
		return
	}
	s.urls["confirmation"], s.urls["validation"] = q.ConfirmationURL, q.ValidationURL
	s.mu.Unlock()
	writeJSON(w, map[string]string{"OriginatorCoversationID": randHex(4) + "-" + randHex(4), "ResponseCode": "0", "ResponseDescription": "success"})
}

// C2B is a till or paybill payment a customer makes.
type C2B struct {
	// TransID is the receipt; empty means a new one.
	TransID string
	// Amount as it goes on the wire, e.g. "100" or "100.00".
	Amount string
	// BillRef is what the customer typed as the account (paybill).
	BillRef string
	// MSISDN is the payer; it is masked on the wire unless PlainMSISDN.
	MSISDN    string
	FirstName string
	// Till sends a Buy Goods payment (no BillRefNumber).
	Till bool
	// Duplicates sends the confirmation this many extra times, at once.
	Duplicates int
}

// SimulateC2B sends a C2B payment to the registered URLs: validation
// (when enabled) then confirmation. It returns the TransID and the
// confirmation's HTTP status.
func (s *Server) SimulateC2B(ctx context.Context, p C2B) (string, int, error) {
	s.mu.Lock()
	conf, val := s.urls["confirmation"], s.urls["validation"]
	s.mu.Unlock()
	if conf == "" {
		return "", 0, fmt.Errorf("sandbox: no C2B URLs registered")
	}
	if p.TransID == "" {
		p.TransID = receipt()
	}
	if p.MSISDN == "" {
		p.MSISDN = TestPhone
	}
	msisdn := p.MSISDN
	switch {
	case s.opt.HashMSISDN:
		sum := sha256.Sum256([]byte(msisdn))
		msisdn = hex.EncodeToString(sum[:])
	case !s.opt.PlainMSISDN && len(msisdn) == 12:
		msisdn = msisdn[:4] + " ***** " + msisdn[9:]
	}
	typ, ref := "Pay Bill", p.BillRef
	if p.Till {
		typ, ref = "Buy Goods", ""
	}
	body, _ := json.Marshal(map[string]string{"TransactionType": typ, "TransID": p.TransID,
		"TransTime": daraja.Timestamp(s.opt.Now()), "TransAmount": p.Amount, "BusinessShortCode": s.opt.ShortCode,
		"BillRefNumber": ref, "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
		"MSISDN": msisdn, "FirstName": p.FirstName, "MiddleName": "", "LastName": ""})
	if s.opt.Validation && val != "" {
		if st := s.post(val, body); st != http.StatusOK {
			return p.TransID, st, fmt.Errorf("sandbox: validation answered %d", st)
		}
	}
	var wg sync.WaitGroup
	statuses := make([]int, 1+p.Duplicates)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = s.post(conf, body)
		}()
	}
	wg.Wait()
	return p.TransID, statuses[0], ctx.Err()
}

func (s *Server) simulate(w http.ResponseWriter, r *http.Request) {
	v := r.PathValue("version")
	if !s.authorise(w, r, "400.003.01") {
		return
	}
	if !s.product(w, v) {
		return
	}
	var q struct {
		ShortCode     daraja.Flex
		CommandID     string
		Amount        daraja.Flex
		Msisdn        daraja.Flex
		BillRefNumber *string
	}
	if err := decode(r, &q); err != nil {
		s.fail(w, http.StatusBadRequest, "400.002.05", "Invalid request payload")
		return
	}
	if q.CommandID != daraja.PayBillOnline && q.CommandID != daraja.BuyGoodsOnline {
		s.fail(w, http.StatusBadRequest, "400.002.02", "Bad Request - Invalid CommandID")
		return
	}
	ref := ""
	if q.BillRefNumber != nil {
		ref = *q.BillRefNumber
	}
	c2b := C2B{Amount: string(q.Amount), BillRef: ref, MSISDN: string(q.Msisdn), Till: q.CommandID == daraja.BuyGoodsOnline}
	s.mu.Lock()
	registered := s.urls["confirmation"] != ""
	s.mu.Unlock()
	if !registered {
		s.fail(w, http.StatusInternalServerError, "500.003.1001", "Internal Server Error: no URLs registered")
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.SimulateC2B(context.Background(), c2b)
	}()
	writeJSON(w, map[string]string{"OriginatorCoversationID": randHex(4), "ResponseCode": "0",
		"ResponseDescription": "Accept the service request successfully."})
}

// control is the fake's own endpoint (not Daraja's): a customer pays the
// till or paybill. Form values: amount (required), ref, msisdn, till=1.
// It needs no token, so a demo can be driven with curl.
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("amount") == "" {
		http.Error(w, "want amount=<shillings> [ref=<account>] [msisdn=2547...] [till=1]", http.StatusBadRequest)
		return
	}
	id, status, err := s.SimulateC2B(r.Context(), C2B{Amount: r.Form.Get("amount"), BillRef: r.Form.Get("ref"),
		MSISDN: r.Form.Get("msisdn"), Till: r.Form.Get("till") != ""})
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	writeJSON(w, map[string]any{"TransID": id, "ConfirmationStatus": status})
}

// Listen binds Options.Addr ("127.0.0.1:0" for any port; the default
// is DefaultAddr), so a busy port is reported before anything starts.
// The fake's base URL is "http://" and the listener's address.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return ln, nil
}

// Serve serves the fake on ln until ctx ends or Close is called, then
// closes ln and waits for the callbacks in flight (later ones are not
// sent). After Close it returns at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	select {
	case <-s.closed:
		ln.Close()
		return net.ErrClosed
	default:
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case <-s.closed:
	case err = <-errc:
	}
	srv.Close()
	s.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
