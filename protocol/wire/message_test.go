package wire

import (
	"errors"
	"reflect"
	"testing"

	"paydesk/payment"
)

func TestDecodePayload(t *testing.T) {
	t.Run("it decodes the docs' IPP plans exactly", func(t *testing.T) {
		msg, err := DecodePayload([]byte(`{"type":"transaction_result","txn_id":"TXN1","status":"ipp_plans","pos_id":"POS001",
			"plans":[{"planId":"IPP_3M","frequency":"Monthly","totalInstallments":3,"installmentDetails":[
			{"installmentNumber":1,"date":"2024-02-15","amount":35.00,"installmentFee":1.50,"installmentFeePercentage":1.5},
			{"installmentNumber":2,"date":"2024-03-15","amount":35.00,"installmentFee":1.50,"installmentFeePercentage":1.5}]},
			{"planId":"pay-in-full","frequency":"","totalInstallments":0,"installmentDetails":[]}],
			"amount":105.0,"timestamp":"1757492763490","nonce":"K6LQxCh2CAE2NB8Do3HOrw=="}`))
		if err != nil {
			t.Fatal(err)
		}
		rm := func(minor int64) payment.Money { return payment.Money{Minor: minor, Currency: "MYR"} }
		want := []payment.Plan{
			{ID: "IPP_3M", Frequency: "Monthly", TotalInstallments: 3, Installments: []payment.Installment{
				{Number: 1, Date: "2024-02-15", Amount: rm(3500), Fee: rm(150), FeePercent: "1.5"},
				{Number: 2, Date: "2024-03-15", Amount: rm(3500), Fee: rm(150), FeePercent: "1.5"},
			}},
			{ID: "pay-in-full", TotalInstallments: 0},
		}
		if !reflect.DeepEqual(msg.Plans, want) {
			t.Fatalf("plans\n got %+v\nwant %+v", msg.Plans, want)
		}
		if msg.Amount != "105.0" || msg.Status != "ipp_plans" || msg.Timestamp.UnixMilli() != 1757492763490 {
			t.Fatalf("decoded %+v", msg)
		}
	})
	t.Run("it keeps Payload as received and all the string fields", func(t *testing.T) {
		in := ` {"type":"transaction_result","status":"failed","error_message":"USER_ABORT","authorization_code":"AUTH1",` +
			`"card_last4":"4242","payment_mode":"card","kiosk_id":"KIOSK001","plan_id":"IPP_3M","message":"m"} `
		msg, err := DecodePayload([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		want := Message{Type: "transaction_result", Status: "failed", ErrorMessage: "USER_ABORT", AuthCode: "AUTH1",
			CardLast4: "4242", PaymentMode: "card", KioskID: "KIOSK001", PlanID: "IPP_3M", Message: "m",
			Payload: []byte(in[1 : len(in)-1])}
		if !reflect.DeepEqual(*msg, want) {
			t.Fatalf("got  %+v\nwant %+v", *msg, want)
		}
	})
	t.Run("an empty plan list is present but empty", func(t *testing.T) {
		msg, err := DecodePayload([]byte(`{"plans":[]}`))
		if err != nil || msg.Plans == nil || len(msg.Plans) != 0 {
			t.Fatalf("plans %#v, %v", msg.Plans, err)
		}
	})
	t.Run("null plans are absent", func(t *testing.T) {
		msg, err := DecodePayload([]byte(`{"plans":null}`))
		if err != nil || msg.Plans != nil {
			t.Fatalf("plans %#v, %v", msg.Plans, err)
		}
	})
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"malformed JSON", `{"type":`, ErrMalformedJSON},
		{"an array", `[{"type":"ack"}]`, ErrBadEnvelope},
		{"plans that are not a list", `{"plans":{"planId":"x"}}`, ErrBadEnvelope},
		{"a plan amount with three decimals", `{"plans":[{"installmentDetails":[{"amount":1.001}]}]}`, ErrBadEnvelope},
		{"a fractional installment count", `{"plans":[{"totalInstallments":1.5}]}`, ErrBadEnvelope},
		{"a type that is not a string", `{"type":true}`, ErrMissingField},
		{"a timestamp that is not milliseconds", `{"timestamp":"soon"}`, ErrMissingField},
	} {
		t.Run("it refuses "+tc.name, func(t *testing.T) {
			if msg, err := DecodePayload([]byte(tc.in)); !errors.Is(err, tc.want) {
				t.Fatalf("DecodePayload: %+v, %v; want %v", msg, err, tc.want)
			}
		})
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, g := range wireGoldens {
		f.Add([]byte(wireEnvelope(f, wireReadGolden(f, g.file)).Payload))
	}
	f.Add([]byte(`{"plans":[{"planId":"IPP_3M","frequency":"Monthly","totalInstallments":3,"installmentDetails":[{"installmentNumber":1,"date":"2024-02-15","amount":35.00,"installmentFee":1.50,"installmentFeePercentage":1.5}]}],"type":"\u0061ck"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		msg, err := DecodePayload(payload)
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("error is not a *RejectError: %v", err)
			}
			return
		}
		for _, p := range msg.Plans {
			for _, in := range p.Installments {
				if in.Amount.Minor < 0 || in.Fee.Minor < 0 {
					t.Fatalf("negative plan money: %+v", in)
				}
			}
		}
		if msg.Amount != "" {
			_, _ = AmountMinor(msg.Amount)
		}
	})
}
