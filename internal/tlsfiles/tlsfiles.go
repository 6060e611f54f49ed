// Package tlsfiles loads the certificate a server presents from the two
// files an operator names by flags: the POS link's, the customer
// display's and the hub's.
package tlsfiles

import (
	"crypto/tls"
	"fmt"
)

// Load returns the TLS configuration of certFile and keyFile (TLS 1.2 at
// least), or nil when both are empty; its errors name the two files by
// their flags, certFlag and keyFlag.
func Load(certFile, keyFile, certFlag, keyFlag string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("TLS needs both %s and %s", certFlag, keyFlag)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
