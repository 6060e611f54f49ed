// Package payment holds paydesk's domain: money in integer minor units, the
// transaction lifecycle, the events every rail reports, the journal those
// events are written to, and the bus that shows them to the console only
// after they are on disk.
//
// It is the one package every rail imports; rails never import each other
// or the user interface, so everything they share lives here.
package payment
