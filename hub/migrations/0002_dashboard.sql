-- The dashboard: operators and their sessions, login failures (shared by
-- replicas, so a rate limit holds across them), and what a kiosk reports of
-- itself when it connects.

CREATE TABLE operators (
	name          text PRIMARY KEY,
	-- bcrypt of the password; the password itself is never stored.
	password_hash bytea NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now()
);

-- A session is a random token in the operator's cookie; the hub keeps its
-- SHA-256, so a copy of this table opens no session.
CREATE TABLE sessions (
	token_hash  bytea PRIMARY KEY,
	operator    text NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
	-- the anti-CSRF token of this session's forms
	csrf        text NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Failed logins, by operator name and by client address, for the limit.
CREATE TABLE login_failures (
	key  text NOT NULL,
	at   timestamptz NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);

-- What the kiosk said in its last hello: its paydesk version, its journal's
-- last sequence (the lag is journal_seq - acked_seq) and each rail's health.
ALTER TABLE kiosks
	ADD COLUMN version     text NOT NULL DEFAULT '',
	ADD COLUMN journal_seq bigint NOT NULL DEFAULT 0,
	ADD COLUMN rails       jsonb,
	ADD COLUMN hello_at    timestamptz;
