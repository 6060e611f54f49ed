-- M-Pesa at the hub, continued.
--
-- paid_at: when Daraja says the payer paid (a C2B TransTime), for
-- matching a Buy Goods (till) payment, which names no sale, by amount
-- to an open sale that existed when it was paid.
--
-- assigned_*: head office assigned an unmatched payment to a kiosk's
-- sale from the dashboard: which sale, who, when. The callback is then
-- routed to that kiosk (kiosk_id, message_id) like any other.
ALTER TABLE mpesa_callbacks
	ADD COLUMN paid_at      timestamptz,
	ADD COLUMN assigned_txn text,
	ADD COLUMN assigned_by  text,
	ADD COLUMN assigned_at  timestamptz;

-- The fleet's open paybill/till sales, by amount.
CREATE INDEX txns_open_c2b ON txns (amount_minor)
	WHERE rail = 'mpesa' AND mode = 'c2b'
	AND status NOT IN ('approved', 'declined', 'cancelled', 'timed_out', 'failed');
