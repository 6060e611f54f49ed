// Package mpesa takes M-Pesa payments through Safaricom's Daraja API:
// STK Push (a prompt on the customer's phone) with the STK Push Query as a
// fallback, and till or paybill payments (C2B) reported to a callback
// server. docs/mpesa.md describes the rail for its users.
//
// The pieces:
//
//   - Client speaks to Daraja (OAuth, STK Push, STK Push Query, C2B
//     Register URL) over an injected *http.Client and base URL, caches the
//     token and refreshes it with one request in flight, and returns
//     *APIError for Daraja's error envelope.
//   - CallbackServer receives the STK callback and the C2B validation and
//     confirmation on unguessable paths, caps bodies, checks the source
//     address against an allow-list and hands every body to the Rail,
//     which journals it before the answer is written.
//   - Rail is the payment.Starter the consoles drive. It treats the
//     callback, the query and the C2B confirmation as three sources of one
//     outcome: results are matched by CheckoutRequestID, C2B payments by
//     bill reference, receipts are deduplicated across all three, and
//     anything that matches nothing is kept for the operator. Started with
//     payment.ModeC2B it sends no push: the sale waits for the customer
//     to pay the paybill (its reference as the account) or the till, and
//     gives the instructions to show through payment.Instructor (the
//     customer display's M-Pesa method).
//
// Money is integer shillings; a wire amount with a fraction is flagged,
// never rounded. Phone numbers are normalised to 2547XXXXXXXX or
// 2541XXXXXXXX and shown masked.
package mpesa
