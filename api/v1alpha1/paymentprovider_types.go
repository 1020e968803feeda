package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProviderType names the PSP protocol that a PaymentProvider speaks.
// +kubebuilder:validation:Enum=Simulator
type ProviderType string

// The supported PSP types.
const (
	// ProviderSimulator is the PSP simulator bundled with payment-operator.
	ProviderSimulator ProviderType = "Simulator"
)

// ConditionReady is the PaymentProvider condition that is True when the
// credentials work and the callback endpoint is registered with the PSP.
const ConditionReady = "Ready"

// Reasons of the PaymentProvider Ready condition.
const (
	ReasonReady                = "Ready"
	ReasonSecretNotFound       = "SecretNotFound"
	ReasonInvalidCredentials   = "InvalidCredentials"
	ReasonProviderUnreachable  = "ProviderUnreachable"
	ReasonRegistrationFailed   = "RegistrationFailed"
	ReasonUnsupportedProvider  = "UnsupportedProvider"
	ReasonInvalidConfiguration = "InvalidConfiguration"
)

// SecretKeyReference names one key of a Secret in the PaymentProvider's namespace.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// Key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Key string `json:"key"`
}

// WebhookSpec is the callback registration: the URL the PSP calls and the secret that signs its calls.
type WebhookSpec struct {
	// URL is the public address of this provider's callback path,
	// https://HOST/hooks/NAMESPACE/NAME, which the operator registers with the PSP.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="url must be an absolute http or https URL"
	// +required
	URL string `json:"url"`

	// SigningSecretRef names the Secret key that holds the callback signing
	// secret (whsec_...). When the Secret does not exist, the operator creates
	// it with the secret that the PSP returns at registration.
	// +required
	SigningSecretRef SecretKeyReference `json:"signingSecretRef"`
}

// RateLimit bounds the requests the operator sends to the PSP for one provider.
type RateLimit struct {
	// RequestsPerSecond is the sustained request rate.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +kubebuilder:default=10
	// +optional
	RequestsPerSecond int32 `json:"requestsPerSecond,omitempty"`

	// Burst is how many requests may go at once above the sustained rate.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +kubebuilder:default=20
	// +optional
	Burst int32 `json:"burst,omitempty"`
}

// PaymentProviderSpec is the connection to one PSP account.
type PaymentProviderSpec struct {
	// Type is the PSP protocol.
	// +required
	Type ProviderType `json:"type"`

	// Endpoint is the base URL of the PSP's API.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http')",message="endpoint must be an absolute http or https URL"
	// +required
	Endpoint string `json:"endpoint"`

	// CredentialsSecretRef names the Secret key that holds the API key.
	// +required
	CredentialsSecretRef SecretKeyReference `json:"credentialsSecretRef"`

	// Webhook is the callback registration.
	// +required
	Webhook WebhookSpec `json:"webhook"`

	// PollInterval is how long after each check the operator asks the PSP
	// again about an unresolved payment, plus up to a tenth more as jitter.
	// It is a Go duration such as 30s, 5m or 1h.
	// Callbacks normally settle payments first; the poll catches lost ones.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(h|m|s|ms|us|ns))+$') && duration(self) >= duration('1s')",message="pollInterval must be a Go duration of at least 1s, such as 30s, 5m or 1h"
	// +optional
	PollInterval *metav1.Duration `json:"pollInterval,omitempty"`

	// RateLimit bounds the requests sent to the PSP.
	// +kubebuilder:default={}
	// +optional
	RateLimit RateLimit `json:"rateLimit,omitempty"`
}

// PaymentProviderStatus is the provider's readiness as the operator last checked it.
type PaymentProviderStatus struct {
	// CallbackEndpointID is the PSP's id of the registered callback endpoint.
	// +optional
	CallbackEndpointID string `json:"callbackEndpointID,omitempty"`

	// CallbackURL is the URL registered under CallbackEndpointID.
	// +optional
	CallbackURL string `json:"callbackURL,omitempty"`

	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions holds Ready, whose reason and message explain why a provider is not ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PaymentProvider connects payments in its namespace to one PSP account.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pspr,categories=paymentoperator
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=".spec.type"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].reason"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type PaymentProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PaymentProviderSpec `json:"spec"`

	// +optional
	Status PaymentProviderStatus `json:"status,omitempty"`
}

// PaymentProviderList is a list of PaymentProviders.
// +kubebuilder:object:root=true
type PaymentProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PaymentProvider `json:"items"`
}
