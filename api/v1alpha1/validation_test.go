package v1alpha1_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/hack/controlplane"
)

var k8sClient client.Client

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	cp, err := controlplane.Start(controlplane.Options{})
	if err != nil {
		println("cannot start the control plane:", err.Error())
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	if err := cp.Stop(); err != nil {
		println("cannot stop the control plane:", err.Error())
	}
	os.Exit(code)
}

// validPayment returns a manifest that the API server accepts, as an
// unstructured object so that tests can put any JSON value in any field.
func validPayment(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "payments.paymentoperator.dev/v1alpha1",
		"kind":       "Payment",
		"metadata":   map[string]any{"name": name, "namespace": "default"},
		"spec": map[string]any{
			"providerRef":   map[string]any{"name": "simulator"},
			"amount":        int64(1999),
			"currency":      "USD",
			"paymentMethod": "pm_success",
			"description":   "Order 1042",
		},
	}}
}

func TestPaymentValidation(t *testing.T) {
	cases := []struct {
		reason string
		field  string
		value  any // nil removes the field
		// wantInMessage must appear in the API server's message; it names the field.
		wantInMessage string
	}{
		{reason: "amount zero", field: "amount", value: int64(0), wantInMessage: "spec.amount"},
		{reason: "negative amount", field: "amount", value: int64(-5), wantInMessage: "spec.amount"},
		{reason: "amount over the int64 range", field: "amount", value: 9.3e18, wantInMessage: "spec.amount"},
		{reason: "fractional amount", field: "amount", value: 19.99, wantInMessage: "spec.amount"},
		{reason: "lower-case currency", field: "currency", value: "usd", wantInMessage: "spec.currency"},
		{reason: "unknown currency", field: "currency", value: "ABC", wantInMessage: "unknown currency: use an ISO 4217 code"},
		{reason: "testing currency code", field: "currency", value: "XTS", wantInMessage: "unknown currency"},
		{reason: "currency too long", field: "currency", value: "USDT", wantInMessage: "spec.currency"},
		{reason: "card number as payment method", field: "paymentMethod", value: "4242424242424242", wantInMessage: "spec.paymentMethod: Invalid value: paymentMethod looks like a card number"},
		{reason: "spaced card number as payment method", field: "paymentMethod", value: "4242 4242 4242 4242", wantInMessage: "spec.paymentMethod"},
		{reason: "card number inside a token", field: "paymentMethod", value: "tok_4000056655665556", wantInMessage: "spec.paymentMethod"},
		{reason: "missing provider reference", field: "providerRef", value: nil, wantInMessage: "spec.providerRef"},
		{reason: "empty provider name", field: "providerRef", value: map[string]any{"name": ""}, wantInMessage: "spec.providerRef.name"},
		{reason: "missing amount", field: "amount", value: nil, wantInMessage: "spec.amount"},
		{reason: "missing payment method", field: "paymentMethod", value: nil, wantInMessage: "spec.paymentMethod"},
	}
	ctx := context.Background()
	for i, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			payment := validPayment("invalid-" + strings.ToLower(strings.ReplaceAll(t.Name()[len("TestPaymentValidation/"):], "_", "-")))
			payment.SetName("invalid-" + string(rune('a'+i)))
			spec := payment.Object["spec"].(map[string]any)
			if tc.value == nil {
				delete(spec, tc.field)
			} else {
				spec[tc.field] = tc.value
			}

			err := k8sClient.Create(ctx, payment)

			if !apierrors.IsInvalid(err) {
				t.Fatalf("create error = %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantInMessage) {
				t.Errorf("message %q does not contain %q", err.Error(), tc.wantInMessage)
			}
			if tc.field == "paymentMethod" && strings.Contains(err.Error(), "4242") {
				t.Errorf("the message repeats the card number: %q", err.Error())
			}
			var stored v1alpha1.Payment
			if getErr := k8sClient.Get(ctx, client.ObjectKeyFromObject(payment), &stored); !apierrors.IsNotFound(getErr) {
				t.Errorf("the invalid Payment was stored: get error = %v", getErr)
			}
		})
	}
}

func TestPaymentAcceptsValidManifest(t *testing.T) {
	ctx := context.Background()
	for _, method := range []string{"pm_success", "pm_decline_insufficient_funds", "pm_card_visa", "tok_123"} {
		payment := validPayment("valid-" + strings.ReplaceAll(method, "_", "-"))
		payment.Object["spec"].(map[string]any)["paymentMethod"] = method
		if err := k8sClient.Create(ctx, payment); err != nil {
			t.Errorf("create with paymentMethod %q: %v", method, err)
		}
	}
	for _, currency := range []string{"EUR", "JPY", "KWD"} {
		payment := validPayment("valid-" + strings.ToLower(currency))
		payment.Object["spec"].(map[string]any)["currency"] = currency
		if err := k8sClient.Create(ctx, payment); err != nil {
			t.Errorf("create with currency %s: %v", currency, err)
		}
	}
}

func TestPaymentSpecIsImmutable(t *testing.T) {
	ctx := context.Background()
	payment := validPayment("immutable-spec")
	if err := k8sClient.Create(ctx, payment); err != nil {
		t.Fatal(err)
	}

	payment.Object["spec"].(map[string]any)["amount"] = int64(2999)
	err := k8sClient.Update(ctx, payment)

	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec is immutable") {
		t.Fatalf("update error = %v, want Invalid with \"spec is immutable\"", err)
	}
	var stored v1alpha1.Payment
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(payment), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Spec.Amount != 1999 {
		t.Errorf("stored amount = %d, want 1999", stored.Spec.Amount)
	}
}

func TestProviderPaymentIDIsWriteOnce(t *testing.T) {
	ctx := context.Background()
	payment := &v1alpha1.Payment{
		ObjectMeta: metav1.ObjectMeta{Name: "write-once", Namespace: "default"},
		Spec: v1alpha1.PaymentSpec{
			ProviderRef: v1alpha1.LocalObjectReference{Name: "simulator"},
			Amount:      100, Currency: "EUR", PaymentMethod: "pm_success",
		},
	}
	if err := k8sClient.Create(ctx, payment); err != nil {
		t.Fatal(err)
	}
	payment.Status.Phase = v1alpha1.PaymentProcessing
	payment.Status.ProviderPaymentID = "pay_first"
	if err := k8sClient.Status().Update(ctx, payment); err != nil {
		t.Fatalf("setting providerPaymentID the first time: %v", err)
	}

	payment.Status.ProviderPaymentID = "pay_second"
	changeErr := k8sClient.Status().Update(ctx, payment)
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(payment), payment); err != nil {
		t.Fatal(err)
	}
	payment.Status.ProviderPaymentID = ""
	clearErr := k8sClient.Status().Update(ctx, payment)

	for name, err := range map[string]error{"change": changeErr, "clear": clearErr} {
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "providerPaymentID cannot change once set") {
			t.Errorf("%s error = %v, want Invalid naming providerPaymentID", name, err)
		}
	}
	var stored v1alpha1.Payment
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(payment), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Status.ProviderPaymentID != "pay_first" {
		t.Errorf("stored providerPaymentID = %q, want pay_first", stored.Status.ProviderPaymentID)
	}
}

func TestPaymentProviderPollInterval(t *testing.T) {
	cases := []struct {
		reason    string
		interval  string
		wantError bool
	}{
		{reason: "an hour is accepted", interval: "1h"},
		{reason: "a compound duration is accepted", interval: "1h30m"},
		{reason: "less than a second is rejected", interval: "100ms", wantError: true},
		{reason: "an unknown unit is rejected", interval: "1x", wantError: true},
		{reason: "a bare number is rejected", interval: "60", wantError: true},
	}
	ctx := context.Background()
	for i, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			provider := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "payments.paymentoperator.dev/v1alpha1",
				"kind":       "PaymentProvider",
				"metadata":   map[string]any{"name": "poll-" + string(rune('a'+i)), "namespace": "default"},
				"spec": map[string]any{
					"type":                 "Simulator",
					"endpoint":             "http://127.0.0.1:8090",
					"credentialsSecretRef": map[string]any{"name": "credentials", "key": "apiKey"},
					"webhook": map[string]any{
						"url":              "https://payments.example.com/hooks/default/simulator",
						"signingSecretRef": map[string]any{"name": "signing", "key": "secret"},
					},
					"pollInterval": tc.interval,
				},
			}}

			err := k8sClient.Create(ctx, provider)

			if !tc.wantError {
				if err != nil {
					t.Fatalf("create with pollInterval %q: %v", tc.interval, err)
				}
				return
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create error = %v, want Invalid", err)
			}
			if want := "spec.pollInterval: Invalid value"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Go duration of at least 1s") {
				t.Errorf("message %q does not name spec.pollInterval and the expected format", err.Error())
			}
			if strings.Contains(err.Error(), "type conversion error") {
				t.Errorf("message %q leaks a CEL conversion error", err.Error())
			}
		})
	}
}
