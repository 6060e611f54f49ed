// Package mpesa is the M-Pesa rail: it takes payments through Safaricom's
// Daraja API, STK Push (a prompt on the customer's phone) with the STK
// Push Query as a fallback, and paybill or till payments (C2B) reported
// to its callback server. docs/mpesa.md describes the rail for its users.
//
// The wire (JSON shapes, password and timestamp, ResultCodes, Daraja's
// limits, MSISDNs) and the client that speaks it are package
// mpesa/daraja; this package holds the payments' state. The pieces:
//
//   - Settings are the rail as an operator configures it: Validate holds
//     the rules (environments and types offered, production's HTTPS
//     callback URL and fixed path secret, address lists, waits), and
//     Open builds the rail with its daraja.Client and callback listener,
//     keeping the callback path secret beside the journal.
//   - Rail is the payment.Starter the consoles drive. Serve(ctx, ln) runs
//     it: it answers the STK callback and the C2B validation and
//     confirmation on ln (Handler: unguessable paths, capped bodies, the
//     source checked against an allow-list, every body journaled before
//     it is answered) until ctx ends or Close is called, then stops the
//     pushes and queries and waits for them. No Context is kept: each
//     push, query and wait gets one that ends when the rail stops.
//   - The rail treats the callback, the query and the C2B confirmation as
//     three sources of one outcome: results are matched by
//     CheckoutRequestID, C2B payments by bill reference, receipts are
//     deduplicated across all three, and anything that matches nothing is
//     kept for the operator. Started with payment.ModeC2B it sends no
//     push: the sale waits for the customer to pay the paybill (its
//     reference as the account) or the till, and gives the instructions to
//     show through payment.Instructor (the customer display's M-Pesa
//     method).
//
// Money is integer shillings; a wire amount with a fraction is flagged,
// never rounded. Phone numbers are normalised to 2547XXXXXXXX or
// 2541XXXXXXXX and reach the journal and the log masked.
package mpesa
