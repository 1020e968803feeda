package controllers

import (
	"testing"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
)

func TestRedact(t *testing.T) {
	cases := []struct {
		reason string
		token  string
		text   string
		want   string
	}{
		{reason: "a PSP message that repeats the token", token: "pm_bogus",
			text: `invalid payment_method "pm_bogus"`, want: `invalid payment_method "[payment method]"`},
		{reason: "every occurrence is replaced", token: "tok_1",
			text: "tok_1 and tok_1", want: "[payment method] and [payment method]"},
		{reason: "a message without the token is kept", token: "pm_success",
			text: "api_error: simulated outage (HTTP 503)", want: "api_error: simulated outage (HTTP 503)"},
		{reason: "an empty token changes nothing", token: "",
			text: "timed out", want: "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			payment := &v1alpha1.Payment{Spec: v1alpha1.PaymentSpec{PaymentMethod: tc.token}}
			if got := redact(tc.text, payment); got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}
