// Package daraja is the codec and client of Safaricom's Daraja API, the
// M-Pesa rail's wire: the JSON shapes of STK Push, STK Push Query, C2B
// URL registration, the STK callback and the C2B validation and
// confirmation; the password and the Nairobi timestamp; ResultCodes and
// what they mean; Daraja's limits on amounts, references, descriptions
// and callback URLs; MSISDNs (normalised to 2547XXXXXXXX or
// 2541XXXXXXXX, shown masked); and the Client that speaks it (OAuth with
// a cached token refreshed by one request in flight, *APIError for
// Daraja's error envelope).
//
// It holds no payment state: the rail (package mpesa) keeps the sales and
// the fake Daraja (package mpesa/sandbox) the other side, and both read
// the wire through this package. Money on the wire is whole shillings; a
// wire amount with a fraction is flagged by WireAmount, never rounded.
package daraja
