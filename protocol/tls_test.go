package protocol_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"paydesk/payment"
	"paydesk/protocol"
	"paydesk/protocol/possim"
	"paydesk/protocol/wire"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "paydesk test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	h := newHarness(t, protocol.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})

	t.Run("a POS connecting with TLS completes a payment", func(t *testing.T) {
		h.sim(possim.Options{TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
		id := h.start(payment.ModeCard, 2550, "")
		h.waitStatus(id, payment.StatusApproved)
	})

	t.Run("a plain-TCP client is refused at the TLS handshake", func(t *testing.T) {
		c := dialRaw(t, h.addr)
		c.send(t, wire.Payload{"type": "ack", "txn_id": "X"})
		ev := h.wait(5*time.Second, "the disconnect", func(ev payment.Event) bool {
			return ev.Kind == payment.KindConnection && strings.HasPrefix(ev.Detail, "disconnected")
		})
		if !strings.Contains(ev.Detail, "tls") {
			t.Errorf("disconnect reason = %q, want the TLS error", ev.Detail)
		}
	})
}
