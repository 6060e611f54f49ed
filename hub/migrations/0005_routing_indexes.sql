-- Indexes for what routing looks up on every callback and every batch of
-- new sales.
--
-- A C2B payment's sale by its reference (routeQuery, SaleOpen): the kiosk
-- is what is looked for, so the primary key (kiosk_id, txn_id) cannot
-- serve; without this, every confirmation and validation read txns.
CREATE INDEX txns_mpesa_txn ON txns (txn_id) WHERE rail = 'mpesa';

-- The callbacks waiting for a batch's sales (routeWaiting): C2B
-- payments by reference, and recent till payments (no reference) by
-- when they came; without this, every batch with a new M-Pesa sale read
-- every unrouted callback. (STK results are found by their (kind, key);
-- till payments' open sales by amount by txns_open_c2b.)
CREATE INDEX mpesa_callbacks_waiting ON mpesa_callbacks (ref, received_at)
	WHERE kiosk_id IS NULL AND kind = 'c2b_confirmation';
