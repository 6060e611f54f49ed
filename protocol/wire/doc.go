// Package wire is the codec of the MobyPay POS–kiosk protocol: the kiosk is
// a TCP server and POS terminals connect to it as clients, exchanging signed
// JSON envelopes. It holds the message types, canonical JSON, signing, the
// inbound guard (the verifier and its nonce store), framing and the amount
// conversions; it does no network I/O and knows nothing of payments in
// flight. The POS link (package protocol) and the POS simulator (package
// possim) both build on it, and the simulator imports only this package.
//
// An envelope is {"payload": {...}, "signature": "<64 lowercase hex>"}; the
// signature is HMAC-SHA256 over the payload's canonical JSON, which must equal
// Python's json.dumps(payload, sort_keys=True, separators=(',', ':')) byte
// for byte, because the reference kiosk and the POS are written in Python and
// Flutter against that definition. [Canonical] reproduces it from the bytes
// as received (a number written with a fraction or exponent is a float, one
// without an integer), [Sign] and [SignRaw] sign outbound payloads, and
// [Verify] checks one envelope.
//
// Inbound frames go through a [FrameReader], which splits a byte stream into
// frames (newline-delimited, back to back, or split over many reads), and a
// per-connection [Verifier], which runs the guard in a fixed order: size,
// JSON, envelope shape, signature, required fields, timestamp window, nonce.
// Every refusal is a [*RejectError] wrapping one of the sentinel errors, so
// callers log the reason and test with errors.Is. Nonces live in one
// [NonceStore] shared by all connections: it remembers each nonce until its
// message's timestamp has left the window, so replay is never re-opened and
// memory stays bounded (the reference kiosk cleared its whole set past 1,000
// entries).
//
// Amounts never travel as floats inside paydesk: [AmountMinor] converts the
// received number text to minor units exactly, and [FormatAmount] writes
// minor units as the float text the POS expects. FormatAmount is the one
// way an amount goes out: the kiosk's transaction_request and the
// simulator's answers put its text in the payload as a json.Number.
package wire
