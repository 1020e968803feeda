package v1alpha1

import (
	"os"
	"regexp"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFormatAmount(t *testing.T) {
	cases := []struct {
		reason   string
		amount   int64
		currency string
		want     string
	}{
		{reason: "two decimals", amount: 1999, currency: "USD", want: "19.99 USD"},
		{reason: "whole amount keeps its decimals", amount: 500, currency: "EUR", want: "5.00 EUR"},
		{reason: "less than one unit", amount: 5, currency: "EUR", want: "0.05 EUR"},
		{reason: "zero-decimal currency", amount: 500, currency: "JPY", want: "500 JPY"},
		{reason: "three decimals", amount: 1500, currency: "KWD", want: "1.500 KWD"},
		{reason: "four decimals", amount: 12345, currency: "CLF", want: "1.2345 CLF"},
		{reason: "largest int64 without rounding", amount: 9223372036854775807, currency: "USD", want: "92233720368547758.07 USD"},
		{reason: "negative amount", amount: -250, currency: "GBP", want: "-2.50 GBP"},
		{reason: "unknown currency shows minor units", amount: 1999, currency: "ABC", want: "1999 ABC"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if got := FormatAmount(tc.amount, tc.currency); got != tc.want {
				t.Errorf("FormatAmount(%d, %q) = %q, want %q", tc.amount, tc.currency, got, tc.want)
			}
		})
	}
}

// The CRD's CEL rule and minorUnits must accept the same currencies, or a
// Payment could pass the API server and then render without its decimals.
func TestCurrencyRuleMatchesMinorUnits(t *testing.T) {
	crd, err := os.ReadFile("../../config/crd/bases/payments.paymentoperator.dev_payments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rule := regexp.MustCompile(`self in \[([^\]]*)\]`).FindSubmatch(crd)
	if rule == nil {
		t.Fatal("no currency rule (self in [...]) in the Payment CRD")
	}
	var inRule []string
	for _, code := range regexp.MustCompile(`'([A-Z]{3})'`).FindAllSubmatch(rule[1], -1) {
		inRule = append(inRule, string(code[1]))
	}
	var inMap []string
	for code := range minorUnits {
		inMap = append(inMap, code)
	}
	sort.Strings(inRule)
	sort.Strings(inMap)

	if diff := cmp.Diff(inMap, inRule); diff != "" {
		t.Errorf("currencies differ between minorUnits and the CRD rule (-minorUnits, +rule):\n%s", diff)
	}
}
