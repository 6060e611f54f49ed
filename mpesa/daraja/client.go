package daraja

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Daraja's base URLs.
const (
	SandboxURL    = "https://sandbox.safaricom.co.ke"
	ProductionURL = "https://api.safaricom.co.ke"
)

// Transaction types of an STK Push.
const (
	PayBillOnline  = "CustomerPayBillOnline"
	BuyGoodsOnline = "CustomerBuyGoodsOnline"
)

// DefaultTokenMargin is how long before its expiry a token is replaced.
const DefaultTokenMargin = 60 * time.Second

// maxResponse caps what the client reads of any answer.
const maxResponse = 1 << 20

// ErrPending is wrapped by STKQuery while the prompt is still open
// (Daraja's "The transaction is being processed").
var ErrPending = errors.New("transaction is being processed")

// ErrConfig is wrapped when the client's configuration is incomplete.
var ErrConfig = errors.New("M-Pesa configuration")

// Config is what the client needs. Secrets (ConsumerSecret, Passkey) are
// never logged.
type Config struct {
	// BaseURL is SandboxURL, ProductionURL or any URL (a fake Daraja).
	BaseURL string
	// HTTP is the client used for every call; nil means one with a 30 s
	// timeout.
	HTTP *http.Client
	// ConsumerKey and ConsumerSecret are the Daraja app's credentials.
	ConsumerKey    string
	ConsumerSecret string
	// ShortCode is the BusinessShortCode: the paybill, or for a till the
	// head office / store number used at Go-Live.
	ShortCode string
	// Passkey is the Lipa na M-Pesa Online passkey.
	Passkey string
	// Till selects Buy Goods (CustomerBuyGoodsOnline, PartyB = TillNumber)
	// instead of Pay Bill (PartyB = ShortCode).
	Till       bool
	TillNumber string
	// TokenMargin: a token is replaced this long before it expires. The
	// default is DefaultTokenMargin.
	TokenMargin time.Duration
	// Now is the clock; the default is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Client speaks to Daraja. It is safe for concurrent use; all calls share
// one cached token.
type Client struct {
	cfg  Config
	http *http.Client
	base string
	log  *slog.Logger

	mu       sync.Mutex
	token    string
	expires  time.Time
	inflight *tokenCall
	oauth    int // OAuth calls made, for tests and health
	lastErr  error
}

type tokenCall struct {
	done  chan struct{}
	token string
	err   error
}

// PayTo is what a customer pays to from their own phone: the paybill
// (the BusinessShortCode) or, for Buy Goods, the till number.
func (c *Client) PayTo() (kind, number string) {
	if c.cfg.Till {
		return "till", c.cfg.TillNumber
	}
	return "paybill", c.cfg.ShortCode
}

// NewClient checks cfg and returns a client.
func NewClient(cfg Config) (*Client, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"base URL", cfg.BaseURL}, {"consumer key", cfg.ConsumerKey},
		{"consumer secret", cfg.ConsumerSecret}, {"shortcode", cfg.ShortCode}, {"passkey", cfg.Passkey}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if cfg.Till && cfg.TillNumber == "" {
		missing = append(missing, "till number")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: missing %s", ErrConfig, strings.Join(missing, ", "))
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.TokenMargin <= 0 {
		cfg.TokenMargin = DefaultTokenMargin
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Client{cfg: cfg, http: cfg.HTTP, base: strings.TrimRight(cfg.BaseURL, "/"), log: cfg.Logger}, nil
}

// OAuthCalls is how many tokens the client has asked for.
func (c *Client) OAuthCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.oauth
}

// TokenError is the last error fetching a token, nil once one was issued.
func (c *Client) TokenError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Ping fetches a token (or uses the cached one), so a console learns at
// start whether the credentials and the base URL work.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.accessToken(ctx)
	return err
}

// Password is base64(shortcode + passkey + timestamp), the STK Password.
func Password(shortCode, passkey, timestamp string) string {
	return base64.StdEncoding.EncodeToString([]byte(shortCode + passkey + timestamp))
}

// accessToken returns a valid token: the cached one, or a new one fetched
// by a single request however many callers wait for it.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	if c.token != "" && c.cfg.Now().Before(c.expires) {
		t := c.token
		c.mu.Unlock()
		return t, nil
	}
	call := c.inflight
	if call == nil {
		call = &tokenCall{done: make(chan struct{})}
		c.inflight = call
		c.oauth++
		go c.fetchToken(call)
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.token, call.err
	case <-ctx.Done():
		return "", fmt.Errorf("daraja oauth: %w", ctx.Err())
	}
}

// invalidate forgets the token stale, if it is still the cached one.
func (c *Client) invalidate(stale string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == stale {
		c.token = ""
	}
}

// fetchToken runs one OAuth request (not bound to any caller's context,
// so one caller giving up does not fail the others).
func (c *Client) fetchToken(call *tokenCall) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, ttl, err := c.oauthRequest(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight = nil
	c.lastErr = err
	if err == nil {
		c.token = tok
		life := ttl - c.cfg.TokenMargin
		if life < ttl/2 {
			life = ttl / 2 // short-lived tokens (tests, fakes): use half
		}
		c.expires = c.cfg.Now().Add(life)
		c.log.Info("daraja token issued", "expires_in", ttl.String())
	} else {
		c.log.Warn("daraja token refused", "err", err)
	}
	call.token, call.err = tok, err
	close(call.done)
}

func (c *Client) oauthRequest(ctx context.Context) (string, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/oauth/v1/generate?grant_type=client_credentials", nil)
	if err != nil {
		return "", 0, fmt.Errorf("daraja oauth: %w", err)
	}
	req.SetBasicAuth(c.cfg.ConsumerKey, c.cfg.ConsumerSecret)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("daraja oauth: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return "", 0, fmt.Errorf("daraja oauth: reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, DecodeError("oauth", resp.StatusCode, body)
	}
	var w struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   Flex   `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &w); err != nil || w.AccessToken == "" {
		return "", 0, &APIError{Op: "oauth", Status: resp.StatusCode, Raw: body}
	}
	secs, err := strconv.ParseFloat(string(w.ExpiresIn), 64)
	if err != nil || secs <= 0 {
		secs = 3599
	}
	return w.AccessToken, time.Duration(secs * float64(time.Second)), nil
}

// post sends body to path with the token; on an invalid-token answer it
// fetches a new token and tries once more. A second refusal is returned.
func (c *Client) post(ctx context.Context, op, path string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("daraja %s: encoding request: %w", op, err)
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return err
		}
		err = c.send(ctx, op, path, tok, payload, out)
		var ae *APIError
		if attempt == 0 && errors.As(err, &ae) && ae.InvalidToken() {
			c.log.Warn("daraja refused the token; fetching a new one", "op", op, "code", ae.Code)
			c.invalidate(tok)
			continue
		}
		return err
	}
}

func (c *Client) send(ctx context.Context, op, path, tok string, payload []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("daraja %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("daraja %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("daraja %s: reading answer: %w", op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return DecodeError(op, resp.StatusCode, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return &APIError{Op: op, Status: resp.StatusCode, Raw: b, Message: "undecodable answer: " + err.Error()}
	}
	return nil
}

// PushRequest is one STK Push.
type PushRequest struct {
	// Phone is the MSISDN, already normalised (2547XXXXXXXX).
	Phone string
	// Amount is in whole shillings, 1 to 250,000.
	Amount int64
	// Reference is the AccountReference: 1-12 letters and digits.
	Reference string
	// Desc is the TransactionDesc, at most 13 characters.
	Desc string
	// CallbackURL is where Daraja posts the result.
	CallbackURL string
}

// PushResponse is Daraja's acceptance of a push: not a payment yet.
type PushResponse struct {
	MerchantRequestID   string `json:"MerchantRequestID"`
	CheckoutRequestID   string `json:"CheckoutRequestID"`
	ResponseCode        Flex   `json:"ResponseCode"`
	ResponseDescription string `json:"ResponseDescription"`
	CustomerMessage     string `json:"CustomerMessage"`
}

type pushBody struct {
	BusinessShortCode string `json:"BusinessShortCode"`
	Password          string `json:"Password"`
	Timestamp         string `json:"Timestamp"`
	TransactionType   string `json:"TransactionType"`
	Amount            int64  `json:"Amount"`
	PartyA            string `json:"PartyA"`
	PartyB            string `json:"PartyB"`
	PhoneNumber       string `json:"PhoneNumber"`
	CallBackURL       string `json:"CallBackURL"`
	AccountReference  string `json:"AccountReference"`
	TransactionDesc   string `json:"TransactionDesc"`
}

// STKPush asks Daraja to prompt the customer's phone. It checks the
// request first (phone, amount, lengths), builds the Password from the
// one Nairobi timestamp it sends, and never retries on a transport error:
// the push may have gone through, and a second one would prompt twice.
func (c *Client) STKPush(ctx context.Context, r PushRequest) (PushResponse, error) {
	var out PushResponse
	phone, err := NormalizePhone(r.Phone)
	if err != nil {
		return out, fmt.Errorf("stk push: %w", err)
	}
	if r.Amount < MinAmount || r.Amount > MaxAmount {
		return out, fmt.Errorf("stk push: amount %d: KES %d to %d: %w", r.Amount, MinAmount, MaxAmount, ErrBadAmount)
	}
	if !ValidAccountReference(r.Reference) {
		return out, fmt.Errorf("stk push: AccountReference %q: 1-%d letters and digits: %w", r.Reference, MaxAccountReference, ErrConfig)
	}
	if len(r.Desc) > MaxTransactionDesc {
		return out, fmt.Errorf("stk push: TransactionDesc %q: at most %d characters: %w", r.Desc, MaxTransactionDesc, ErrConfig)
	}
	if r.Desc == "" {
		r.Desc = "Payment"
	}
	ts := Timestamp(c.cfg.Now())
	body := pushBody{BusinessShortCode: c.cfg.ShortCode, Password: Password(c.cfg.ShortCode, c.cfg.Passkey, ts),
		Timestamp: ts, TransactionType: PayBillOnline, Amount: r.Amount, PartyA: phone, PartyB: c.cfg.ShortCode,
		PhoneNumber: phone, CallBackURL: r.CallbackURL, AccountReference: r.Reference, TransactionDesc: r.Desc}
	if c.cfg.Till {
		body.TransactionType, body.PartyB = BuyGoodsOnline, c.cfg.TillNumber
	}
	if err := c.post(ctx, "stk push", "/mpesa/stkpush/v1/processrequest", body, &out); err != nil {
		return out, err
	}
	if out.ResponseCode != "0" || out.CheckoutRequestID == "" {
		return out, &APIError{Op: "stk push", Status: http.StatusOK, Code: string(out.ResponseCode), Message: out.ResponseDescription}
	}
	return out, nil
}

type queryBody struct {
	BusinessShortCode string `json:"BusinessShortCode"`
	Password          string `json:"Password"`
	Timestamp         string `json:"Timestamp"`
	CheckoutRequestID string `json:"CheckoutRequestID"`
}

type queryAnswer struct {
	ResponseCode        Flex   `json:"ResponseCode"`
	ResponseDescription string `json:"ResponseDescription"`
	MerchantRequestID   string `json:"MerchantRequestID"`
	CheckoutRequestID   string `json:"CheckoutRequestID"`
	ResultCode          Flex   `json:"ResultCode"`
	ResultDesc          string `json:"ResultDesc"`
}

// STKQuery asks for the outcome of a push. While the prompt is open it
// returns an error wrapping ErrPending (and the *APIError).
func (c *Client) STKQuery(ctx context.Context, checkoutID string) (STKResult, error) {
	ts := Timestamp(c.cfg.Now())
	var a queryAnswer
	err := c.post(ctx, "stk query", "/mpesa/stkpushquery/v1/query", queryBody{BusinessShortCode: c.cfg.ShortCode,
		Password: Password(c.cfg.ShortCode, c.cfg.Passkey, ts), Timestamp: ts, CheckoutRequestID: checkoutID}, &a)
	var ae *APIError
	if errors.As(err, &ae) && ae.Pending() {
		return STKResult{}, fmt.Errorf("%w: %w", ErrPending, ae)
	}
	if err != nil {
		return STKResult{}, err
	}
	if a.ResultCode == "" {
		return STKResult{}, &APIError{Op: "stk query", Status: http.StatusOK, Code: string(a.ResponseCode), Message: a.ResponseDescription}
	}
	id := a.CheckoutRequestID
	if id == "" {
		id = checkoutID
	}
	return STKResult{MerchantRequestID: a.MerchantRequestID, CheckoutRequestID: id, Code: string(a.ResultCode), Desc: a.ResultDesc}, nil
}

// RegisterRequest registers the C2B URLs of the shortcode.
type RegisterRequest struct {
	// Version is "v1" or "v2" (the default): it must match the API
	// product enabled on the Daraja app, or Daraja answers 401.003.01.
	Version string
	// ResponseType is what Daraja does when the validation URL does not
	// answer: "Completed" (the default) or "Cancelled".
	ResponseType    string
	ConfirmationURL string
	ValidationURL   string
}

// RegisterResponse is Daraja's answer to a registration.
type RegisterResponse struct {
	ConversationID      string
	ResponseCode        string
	ResponseDescription string
}

// RegisterURLs registers the C2B confirmation and validation URLs.
func (c *Client) RegisterURLs(ctx context.Context, r RegisterRequest) (RegisterResponse, error) {
	if r.Version == "" {
		r.Version = "v2"
	}
	if r.Version != "v1" && r.Version != "v2" {
		return RegisterResponse{}, fmt.Errorf("c2b register: version %q: want v1 or v2: %w", r.Version, ErrConfig)
	}
	if r.ResponseType == "" {
		r.ResponseType = "Completed"
	}
	if r.ResponseType != "Completed" && r.ResponseType != "Cancelled" {
		return RegisterResponse{}, fmt.Errorf("c2b register: ResponseType %q: want Completed or Cancelled: %w", r.ResponseType, ErrConfig)
	}
	for _, u := range []string{r.ConfirmationURL, r.ValidationURL} {
		if err := CheckCallbackURL(u); err != nil {
			return RegisterResponse{}, fmt.Errorf("c2b register: %w", err)
		}
	}
	var a struct {
		Originator          string `json:"OriginatorConversationID"`
		OriginatorMisspelt  string `json:"OriginatorCoversationID"`
		ResponseCode        Flex   `json:"ResponseCode"`
		ResponseDescription string `json:"ResponseDescription"`
	}
	err := c.post(ctx, "c2b register", "/mpesa/c2b/"+r.Version+"/registerurl", map[string]string{
		"ShortCode": c.cfg.ShortCode, "ResponseType": r.ResponseType,
		"ConfirmationURL": r.ConfirmationURL, "ValidationURL": r.ValidationURL}, &a)
	if err != nil {
		return RegisterResponse{}, err
	}
	out := RegisterResponse{ConversationID: a.Originator, ResponseCode: string(a.ResponseCode), ResponseDescription: a.ResponseDescription}
	if out.ConversationID == "" {
		out.ConversationID = a.OriginatorMisspelt
	}
	if out.ResponseCode != "0" {
		return out, &APIError{Op: "c2b register", Status: http.StatusOK, Code: out.ResponseCode, Message: out.ResponseDescription}
	}
	return out, nil
}

// bannedURLWords are refused by Daraja anywhere in a callback URL.
var bannedURLWords = []string{"m-pesa", "mpesa", "safaricom", "exe", "exec", "cmd", "sql", "query"}

// BannedURLWord returns the word Daraja refuses in a callback URL that s
// contains, in any case, if any.
func BannedURLWord(s string) (string, bool) {
	l := strings.ToLower(s)
	for _, w := range bannedURLWords {
		if strings.Contains(l, w) {
			return w, true
		}
	}
	return "", false
}

// ErrBadURL is wrapped when a callback URL would be refused by Daraja.
var ErrBadURL = errors.New("callback URL refused")

// CheckCallbackURL refuses a URL Daraja would refuse: not http(s), or
// containing M-Pesa, mpesa, Safaricom, exe, exec, cmd, SQL or query in
// any case, or a tunnel service Daraja blocks.
func CheckCallbackURL(u string) error {
	l := strings.ToLower(u)
	if !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "http://") {
		return fmt.Errorf("%q: not an http(s) URL: %w", u, ErrBadURL)
	}
	if w, ok := BannedURLWord(l); ok {
		return fmt.Errorf("%q contains %q, which Daraja refuses: %w", u, w, ErrBadURL)
	}
	for _, w := range []string{"ngrok", "mockbin", "requestbin"} {
		if strings.Contains(l, w) {
			return fmt.Errorf("%q uses %s, which Daraja blocks in production: %w", u, w, ErrBadURL)
		}
	}
	return nil
}
