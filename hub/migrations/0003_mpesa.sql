-- M-Pesa at the hub: every callback Safaricom Daraja posts to the hub,
-- stored before it is answered, once per CheckoutRequestID (STK) or
-- TransID (C2B), and the kiosk it was routed to. A callback routed to no
-- kiosk (kiosk_id NULL) is in the fleet's unmatched list until a kiosk
-- reports the sale it belongs to.
CREATE TABLE mpesa_callbacks (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- 'stk', 'c2b_confirmation' or 'c2b_validation'
	kind          text NOT NULL,
	-- CheckoutRequestID (stk) or TransID (c2b)
	key           text NOT NULL,
	-- the bill reference, normalised as kiosks mint them (c2b)
	ref           text NOT NULL DEFAULT '',
	amount_minor  bigint NOT NULL DEFAULT 0,
	result_code   text NOT NULL DEFAULT '',
	-- the body with phone numbers masked, kept for the record
	raw           bytea NOT NULL,
	-- the body as received, until it is queued for its kiosk (the
	-- kiosk's rail needs the payer's number to match a lost push)
	body          bytea,
	source        text NOT NULL,
	allowed       boolean NOT NULL,
	kiosk_id      text REFERENCES kiosks(id),
	message_id    bigint REFERENCES messages(id),
	duplicates    integer NOT NULL DEFAULT 0,
	received_at   timestamptz NOT NULL DEFAULT now(),
	routed_at     timestamptz,
	UNIQUE (kind, key)
);
CREATE INDEX mpesa_callbacks_unrouted ON mpesa_callbacks (received_at) WHERE kiosk_id IS NULL;

-- STK callbacks are routed by the CheckoutRequestID a kiosk journaled
-- (the result's remote_id of its acknowledged transition).
CREATE INDEX events_remote_id ON events ((result->>'remote_id')) WHERE rail = 'mpesa' AND result ? 'remote_id';
