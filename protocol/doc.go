// Package protocol is the kiosk's side of the MobyPay POS link, a payment
// rail: a TCP server (optionally TLS) that POS terminals connect to, with
// one session per connection and one serial executor per payment.
//
// The Server identifies each POS by its pos_id, sends it payment
// requests (transaction_request, cancel_transaction, ipp_plan_selection),
// turns its answers into journaled transitions on the payment bus, and
// refuses bad input with a logged, journaled rejection at a bounded rate
// (limit.go). A Server has the Serve(ctx, ln) + Close shape; Listen binds
// its address.
//
// Everything about the bytes on the wire (canonical JSON, signing, the
// verifier, framing, nonces, the message types, amounts) is package wire.
package protocol
