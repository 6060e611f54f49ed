// Package terminal is the card terminal rail: it drives an unattended card
// terminal over a serial link with the French Concert protocol, as the
// terminals behind HiPay's unattended ECR connector speak it.
//
// The wire format (frames, LRC, requests, answers) is package concert.
// This package holds the link's session state machine (link.go), the
// port's reader and its masked byte log (wire.go), the serial port itself
// (port.go) and the Driver (driver.go): a payment.Starter that owns the
// port, one payment at a time, and reports each step on the bus. A Driver
// runs with Run(ctx).
package terminal
