package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/crypto/bcrypt"
)

// Errors of the dashboard's accounts.
var (
	// ErrOperatorExists is returned by AddOperator for a name in use.
	ErrOperatorExists = errors.New("operator already exists")
	// ErrNoOperator is returned for a name the hub does not know.
	ErrNoOperator = errors.New("no such operator")
	// ErrBadOperatorName is returned for a name that is not 1 to 64
	// letters, digits, '.', '_', '-' or '@'.
	ErrBadOperatorName = errors.New("operator name must be 1 to 64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit")
	// ErrWeakPassword is returned for a password under 10 characters or
	// over bcrypt's 72 bytes.
	ErrWeakPassword = errors.New("password must be 10 to 72 bytes")
	// ErrBadLogin is returned by Login for a wrong name or password.
	ErrBadLogin = errors.New("wrong operator name or password")
	// ErrNoSession is returned for a session token that is unknown or
	// expired.
	ErrNoSession = errors.New("no such session, or it expired")
)

var operatorRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// Operator is a dashboard account.
type Operator struct {
	Name    string
	Created time.Time
}

// AddOperator creates a dashboard account with a bcrypt hash of password.
func (s *Store) AddOperator(ctx context.Context, name, password string) error {
	if !operatorRE.MatchString(name) {
		return ErrBadOperatorName
	}
	if len(password) < 10 || len(password) > 72 {
		return ErrWeakPassword
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO operators (name, password_hash) VALUES ($1, $2)`, name, hash)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%s: %w", name, ErrOperatorExists)
	}
	if err != nil {
		return fmt.Errorf("add operator %s: %w", name, err)
	}
	return nil
}

// RemoveOperator deletes an account and its sessions.
func (s *Store) RemoveOperator(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM operators WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("remove operator %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", name, ErrNoOperator)
	}
	return nil
}

// Operators lists the accounts by name.
func (s *Store) Operators(ctx context.Context) ([]Operator, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, created_at FROM operators ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Operator, error) {
		var o Operator
		return o, r.Scan(&o.Name, &o.Created)
	})
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	return out, nil
}

// dummyHash is compared against when the name is unknown, so a wrong name
// takes as long as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("paydesk-no-such-operator"), bcrypt.DefaultCost)

// CheckPassword returns nil when password is name's, else ErrBadLogin.
func (s *Store) CheckPassword(ctx context.Context, name, password string) error {
	var hash []byte
	err := s.pool.QueryRow(ctx, `SELECT password_hash FROM operators WHERE name = $1`, name).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return ErrBadLogin
	}
	if err != nil {
		return fmt.Errorf("check password: %w", err)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return ErrBadLogin
	}
	return nil
}

// Session is an operator's logged-in session.
type Session struct {
	Operator string
	CSRF     string
	Expires  time.Time
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashSession(token string) []byte {
	h := sha256.Sum256([]byte("session:" + token))
	return h[:]
}

// NewSession opens a session for operator lasting ttl and returns its
// token (for the cookie; the hub keeps only its hash).
func (s *Store) NewSession(ctx context.Context, operator string, ttl time.Duration) (string, Session, error) {
	token, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	now := s.now()
	sess := Session{Operator: operator, CSRF: csrf, Expires: now.Add(ttl)}
	// Expired sessions go as new ones come.
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now); err != nil {
		return "", Session{}, fmt.Errorf("open session: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO sessions (token_hash, operator, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		hashSession(token), operator, csrf, now, sess.Expires)
	if err != nil {
		return "", Session{}, fmt.Errorf("open session for %s: %w", operator, err)
	}
	return token, sess, nil
}

// SessionOf returns the live session of a token, or ErrNoSession.
func (s *Store) SessionOf(ctx context.Context, token string) (Session, error) {
	var sess Session
	if token == "" || len(token) > 128 {
		return sess, ErrNoSession
	}
	err := s.pool.QueryRow(ctx, `SELECT operator, csrf, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2`,
		hashSession(token), s.now()).Scan(&sess.Operator, &sess.CSRF, &sess.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return sess, ErrNoSession
	}
	if err != nil {
		return sess, fmt.Errorf("read session: %w", err)
	}
	return sess, nil
}

// EndSession deletes a session (logout).
func (s *Store) EndSession(ctx context.Context, token string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, hashSession(token)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// LoginFailures returns the most failures recorded under any one of keys
// since since.
func (s *Store) LoginFailures(ctx context.Context, since time.Time, keys ...string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM login_failures
		WHERE key = ANY($1) AND at > $2 GROUP BY key) per_key`, keys, since).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count login failures: %w", err)
	}
	return n, nil
}

// RecordLoginFailure records a failed login under each of keys, and drops
// failures older than a day.
func (s *Store) RecordLoginFailure(ctx context.Context, keys ...string) error {
	now := s.now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM login_failures WHERE at < $1`, now.Add(-24*time.Hour)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO login_failures (key, at) SELECT unnest($1::text[]), $2`, keys, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}
