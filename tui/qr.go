package tui

import (
	"net"
	"strings"

	"rsc.io/qr"
)

// connectAddr is the address a POS should dial: the listen address, with
// the machine's LAN address in place of 0.0.0.0 or ::.
func connectAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen
	}
	if lan := lanIP(); lan != "" {
		return net.JoinHostPort(lan, port)
	}
	return listen
}

// lanIP is the first IPv4 address of an interface that is up and not a
// loopback: found locally, without sending anything.
func lanIP() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	return ""
}

// qrBlock draws text as a QR code with half-block characters, two modules
// per character row, with a two-module quiet zone.
func qrBlock(text string) string {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return "(address too long for a QR code)"
	}
	const quiet = 2
	n := code.Size + 2*quiet
	black := func(x, y int) bool {
		x, y = x-quiet, y-quiet
		return x >= 0 && y >= 0 && x < code.Size && y < code.Size && code.Black(x, y)
	}
	var b strings.Builder
	for y := 0; y < n; y += 2 {
		for x := 0; x < n; x++ {
			// Dark modules are drawn as spaces on a light block, so the
			// code reads on dark terminals as scanners expect.
			top, bottom := !black(x, y), y+1 < n && !black(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}
