package daraja

// MaxAccountReference and MaxTransactionDesc are Daraja's length limits.
const (
	MaxAccountReference = 12
	MaxTransactionDesc  = 13
)

// ValidAccountReference reports whether s may be sent as an
// AccountReference: 1 to 12 letters and digits.
func ValidAccountReference(s string) bool {
	if s == "" || len(s) > MaxAccountReference {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}
