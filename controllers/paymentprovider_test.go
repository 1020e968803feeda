package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
)

func TestProviderReadyReasons(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "wrong-key", Namespace: p.namespace},
		StringData: map[string]string{"apiKey": "sk_test_wrong"},
	})
	cases := []struct {
		reason     string
		name       string
		endpoint   string
		credential string
		wantReason string
	}{
		{reason: "a missing credentials Secret", name: "no-secret", endpoint: p.url, credential: "absent", wantReason: v1alpha1.ReasonSecretNotFound},
		{reason: "an API key the PSP rejects", name: "wrong-key", endpoint: p.url, credential: "wrong-key", wantReason: v1alpha1.ReasonInvalidCredentials},
		{reason: "a PSP nobody listens at", name: "unreachable", endpoint: "http://127.0.0.1:1", credential: "simulator-credentials", wantReason: v1alpha1.ReasonProviderUnreachable},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			create(t, &v1alpha1.PaymentProvider{
				ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: p.namespace},
				Spec: v1alpha1.PaymentProviderSpec{
					Type:                 v1alpha1.ProviderSimulator,
					Endpoint:             tc.endpoint,
					CredentialsSecretRef: v1alpha1.SecretKeyReference{Name: tc.credential, Key: "apiKey"},
					Webhook: v1alpha1.WebhookSpec{
						URL:              fmt.Sprintf("%s/hooks/%s/%s", callbackURL, p.namespace, tc.name),
						SigningSecretRef: v1alpha1.SecretKeyReference{Name: tc.name + "-signing", Key: "secret"},
					},
				},
			})

			waitFor(t, 20*time.Second, "Ready=False with reason "+tc.wantReason, func() (bool, string) {
				var provider v1alpha1.PaymentProvider
				if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: tc.name}, &provider); err != nil {
					return false, err.Error()
				}
				cond := meta.FindStatusCondition(provider.Status.Conditions, v1alpha1.ConditionReady)
				return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == tc.wantReason, fmt.Sprint(cond)
			})
		})
	}
}

func TestProviderRegistersCallbackOnce(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	var provider v1alpha1.PaymentProvider
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: p.provider}, &provider); err != nil {
		t.Fatal(err)
	}
	if provider.Status.CallbackEndpointID == "" {
		t.Fatal("status.callbackEndpointID is empty on a Ready provider")
	}
	if secret := p.signingSecret(t); len(secret) < len("whsec_")+8 || secret[:6] != "whsec_" {
		t.Errorf("stored signing secret does not look like a whsec_ secret")
	}

	// A change that makes the controller check again must not register a second endpoint.
	provider.Spec.RateLimit.Burst = 30
	if err := k8sClient.Update(context.Background(), &provider); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the provider to be checked again", func() (bool, string) {
		var latest v1alpha1.PaymentProvider
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(&provider), &latest); err != nil {
			return false, err.Error()
		}
		return latest.Status.ObservedGeneration == latest.Generation, "observedGeneration behind"
	})
	if endpoints := p.callbackEndpoints(t); endpoints != 1 {
		t.Errorf("the PSP holds %d callback endpoints, want 1", endpoints)
	}
}
