package possim

import (
	"encoding/json"
	"paydesk/protocol/wire"
	"time"
)

type jsonNumber = json.Number

// Plans builds the instalment plans the simulator offers for an amount in
// minor units: monthly over 3 and 6 months with a 1.5% and 2.5% fee per
// instalment, and the pay-in-full plan the real POS sends.
func Plans(minor int64) []any {
	return []any{
		plan("IPP_3M", "Monthly", minor, 3, 150),
		plan("IPP_6M", "Monthly", minor, 6, 250),
		map[string]any{"planId": "pay-in-full", "frequency": "", "totalInstallments": 0, "installmentDetails": []any{}},
	}
}

// plan splits minor into n instalments (the last takes the remainder)
// with a fee of feeBP basis points of each instalment.
func plan(id, freq string, minor int64, n int, feeBP int64) map[string]any {
	first := time.Now().AddDate(0, 1, 0)
	start := time.Date(first.Year(), first.Month(), 15, 0, 0, 0, 0, time.UTC)
	each := minor / int64(n)
	details := make([]any, 0, n)
	for i := range n {
		amt := each
		if i == n-1 {
			amt = minor - each*int64(n-1)
		}
		fee := (amt*feeBP + 5000) / 10000
		details = append(details, map[string]any{
			"installmentNumber":        i + 1,
			"date":                     start.AddDate(0, i, 0).Format("2006-01-02"),
			"amount":                   json.Number(wire.FormatAmount(amt)),
			"installmentFee":           json.Number(wire.FormatAmount(fee)),
			"installmentFeePercentage": json.Number(wire.FormatAmount(feeBP)),
		})
	}
	return map[string]any{"planId": id, "frequency": freq, "totalInstallments": n, "installmentDetails": details}
}
