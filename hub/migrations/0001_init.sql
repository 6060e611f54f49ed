-- The hub's first schema: kiosks and their tokens, the replicated journal
-- events, the transactions they build, and messages for kiosks.

CREATE TABLE kiosks (
	id          text PRIMARY KEY,
	-- SHA-256 of the kiosk's token; the token itself is never stored.
	token_hash  bytea NOT NULL UNIQUE,
	created_at  timestamptz NOT NULL DEFAULT now(),
	revoked_at  timestamptz,
	-- the highest journal sequence stored for this kiosk
	acked_seq   bigint NOT NULL DEFAULT 0,
	last_seen   timestamptz
);

-- One row per journal event of each kiosk: exactly once, by (kiosk, seq).
CREATE TABLE events (
	kiosk_id     text NOT NULL REFERENCES kiosks(id),
	seq          bigint NOT NULL,
	-- arrival order at the hub, to check that kiosks replay in order
	id           bigint GENERATED ALWAYS AS IDENTITY,
	at           timestamptz NOT NULL,
	kind         text NOT NULL,
	rail         text NOT NULL,
	txn_id       text NOT NULL DEFAULT '',
	status       text NOT NULL DEFAULT '',
	peer         text NOT NULL DEFAULT '',
	mode         text NOT NULL DEFAULT '',
	amount_minor bigint NOT NULL DEFAULT 0,
	currency     text NOT NULL DEFAULT '',
	detail       text NOT NULL DEFAULT '',
	flag         text NOT NULL DEFAULT '',
	result       jsonb,
	plans        jsonb,
	raw          bytea,
	received_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (kiosk_id, seq)
);
CREATE INDEX events_txn ON events (kiosk_id, txn_id) WHERE txn_id <> '';

-- Each kiosk's transactions as their transitions leave them: the latest
-- transition by sequence wins, whatever order batches arrive in.
CREATE TABLE txns (
	kiosk_id     text NOT NULL REFERENCES kiosks(id),
	txn_id       text NOT NULL,
	rail         text NOT NULL,
	mode         text NOT NULL DEFAULT '',
	amount_minor bigint NOT NULL DEFAULT 0,
	currency     text NOT NULL DEFAULT '',
	status       text NOT NULL,
	status_seq   bigint NOT NULL,
	created_at   timestamptz,
	updated_at   timestamptz NOT NULL,
	PRIMARY KEY (kiosk_id, txn_id)
);
CREATE INDEX txns_created ON txns (created_at);

-- Messages from the hub to one kiosk (M-Pesa callbacks routed to the kiosk
-- that reported the sale, later). A kiosk reads and acknowledges only its
-- own.
CREATE TABLE messages (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kiosk_id    text NOT NULL REFERENCES kiosks(id),
	kind        text NOT NULL,
	body        jsonb NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	acked_at    timestamptz
);
CREATE INDEX messages_pending ON messages (kiosk_id, id) WHERE acked_at IS NULL;
