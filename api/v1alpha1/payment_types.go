package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PaymentPhase is the stage of a Payment in its lifecycle. Phases only move
// forward: Pending, then Processing, then optionally RequiresAction, then one
// of the terminal phases Succeeded, Failed or Canceled.
// +kubebuilder:validation:Enum=Pending;Processing;RequiresAction;Succeeded;Failed;Canceled
type PaymentPhase string

// The phases of a Payment.
const (
	// PaymentPending means the cluster accepted the payment and the PSP does not have it yet.
	PaymentPending PaymentPhase = "Pending"
	// PaymentProcessing means the PSP accepted the payment and has not settled it.
	PaymentProcessing PaymentPhase = "Processing"
	// PaymentRequiresAction means the customer must act, for example confirm with 3-D Secure.
	PaymentRequiresAction PaymentPhase = "RequiresAction"
	// PaymentSucceeded is terminal: the money moved.
	PaymentSucceeded PaymentPhase = "Succeeded"
	// PaymentFailed is terminal: the PSP declined or rejected the payment.
	PaymentFailed PaymentPhase = "Failed"
	// PaymentCanceled is terminal: the payment was canceled before it settled.
	PaymentCanceled PaymentPhase = "Canceled"
)

// IsTerminal reports whether a payment in this phase can never change again.
func (p PaymentPhase) IsTerminal() bool {
	return p == PaymentSucceeded || p == PaymentFailed || p == PaymentCanceled
}

// Condition types of a Payment.
const (
	// ConditionSubmitted is True once the PSP holds the payment. While it is
	// False, its reason names what holds the payment back.
	ConditionSubmitted = "Submitted"
	// ConditionSettled is True once the payment reached a terminal phase.
	ConditionSettled = "Settled"
	// ConditionProviderReachable is False while calls to the PSP fail with a
	// transient error (timeout, 5xx) and are being retried.
	ConditionProviderReachable = "ProviderReachable"
)

// PaymentSpec is the charge to make: amount, currency, payment method and
// provider. It cannot change after creation, so the amount of a payment in
// flight cannot be altered.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: create a new Payment instead"
// +kubebuilder:validation:XValidation:rule="!has(self.paymentMethod) || !(self.paymentMethod.matches('[0-9]{12,}') || (self.paymentMethod.matches('^[0-9 -]+$') && size(self.paymentMethod.findAll('[0-9]')) >= 12))",message="paymentMethod looks like a card number: pass a payment method token from the PSP instead, such as pm_success",fieldPath=".paymentMethod"
type PaymentSpec struct {
	// ProviderRef names the PaymentProvider, in the Payment's namespace, that processes this payment.
	// +required
	ProviderRef LocalObjectReference `json:"providerRef"`

	// Amount is the amount to charge, an integer in the currency's minor unit
	// (cents for USD, yen for JPY): 1999 with USD is 19.99 USD.
	// +kubebuilder:validation:Minimum=1
	// +required
	Amount int64 `json:"amount"`

	// Currency is an ISO 4217 currency code in upper case, such as USD or EUR.
	// Fund, precious-metal and testing codes (XTS, XAU and the like) are not accepted.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=3
	// +kubebuilder:validation:Pattern=`^[A-Z]{3}$`
	// +kubebuilder:validation:XValidation:rule="self in ['AED','AFN','ALL','AMD','ANG','AOA','ARS','AUD','AWG','AZN','BAM','BBD','BDT','BHD','BIF','BMD','BND','BOB','BOV','BRL','BSD','BTN','BWP','BYN','BZD','CAD','CDF','CHE','CHF','CHW','CLF','CLP','CNY','COP','COU','CRC','CUP','CVE','CZK','DJF','DKK','DOP','DZD','EGP','ERN','ETB','EUR','FJD','FKP','GBP','GEL','GHS','GIP','GMD','GNF','GTQ','GYD','HKD','HNL','HTG','HUF','IDR','ILS','INR','IQD','IRR','ISK','JMD','JOD','JPY','KES','KGS','KHR','KMF','KPW','KRW','KWD','KYD','KZT','LAK','LBP','LKR','LRD','LSL','LYD','MAD','MDL','MGA','MKD','MMK','MNT','MOP','MRU','MUR','MVR','MWK','MXN','MXV','MYR','MZN','NAD','NGN','NIO','NOK','NPR','NZD','OMR','PAB','PEN','PGK','PHP','PKR','PLN','PYG','QAR','RON','RSD','RUB','RWF','SAR','SBD','SCR','SDG','SEK','SGD','SHP','SLE','SOS','SRD','SSP','STN','SVC','SYP','SZL','THB','TJS','TMT','TND','TOP','TRY','TTD','TWD','TZS','UAH','UGX','USD','USN','UYI','UYU','UYW','UZS','VED','VES','VND','VUV','WST','XAF','XCD','XCG','XOF','XPF','YER','ZAR','ZMW','ZWG']",message="unknown currency: use an ISO 4217 code such as USD or EUR (fund, precious-metal and testing codes such as XTS and XAU are not accepted)"
	// +required
	Currency string `json:"currency"`

	// The card-number rule for PaymentMethod sits on PaymentSpec, not on the
	// field, so the API server's error names the field without repeating the
	// card number.

	// PaymentMethod is a token that the PSP issued for the customer's payment
	// method, for example pm_success for the simulator. Card numbers are
	// rejected: card data never belongs in the cluster.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +required
	PaymentMethod string `json:"paymentMethod"`

	// Description is shown to the customer and in the PSP's dashboard.
	// +kubebuilder:validation:MaxLength=1000
	// +optional
	Description string `json:"description,omitempty"`

	// OrderRef is the order this payment pays for, kept for reference.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	OrderRef string `json:"orderRef,omitempty"`

	// IdempotencyKey is sent with every create at the PSP so that retries never
	// charge twice. It defaults to the Payment's UID; set it to tie the payment
	// to a key of your own, such as an order id.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// PaymentStatus is the state of the payment as the operator and the PSP last reported it.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.providerPaymentID) || (has(self.providerPaymentID) && self.providerPaymentID == oldSelf.providerPaymentID)",message="providerPaymentID cannot change once set"
type PaymentStatus struct {
	// Phase is the stage of the payment in its lifecycle.
	// +optional
	Phase PaymentPhase `json:"phase,omitempty"`

	// ProviderPaymentID is the PSP's id for this payment. Once set it never changes.
	// +optional
	ProviderPaymentID string `json:"providerPaymentID,omitempty"`

	// IdempotencyKey is the key sent to the PSP: spec.idempotencyKey, or the Payment's UID.
	// +optional
	IdempotencyKey string `json:"idempotencyKey,omitempty"`

	// DisplayAmount is the amount in major units with its currency, such as "19.99 USD".
	// +optional
	DisplayAmount string `json:"displayAmount,omitempty"`

	// SubmittedAt is when the PSP accepted the payment.
	// +optional
	SubmittedAt *metav1.Time `json:"submittedAt,omitempty"`

	// SettledAt is when the payment reached a terminal phase.
	// +optional
	SettledAt *metav1.Time `json:"settledAt,omitempty"`

	// LastPolledAt is when the operator last asked the PSP for this payment.
	// +optional
	LastPolledAt *metav1.Time `json:"lastPolledAt,omitempty"`

	// NextPollAt is when the operator will next ask the PSP, unless a callback
	// settles the payment first.
	// +optional
	NextPollAt *metav1.Time `json:"nextPollAt,omitempty"`

	// FailureCode is the PSP's code for a declined or rejected payment, such as insufficient_funds.
	// +optional
	FailureCode string `json:"failureCode,omitempty"`

	// FailureMessage is the PSP's explanation of FailureCode.
	// +optional
	FailureMessage string `json:"failureMessage,omitempty"`

	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Submitted, Settled and ProviderReachable.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Payment is one charge submitted to a payment service provider. Create it
// and watch status.phase move from Pending to Succeeded, Failed or Canceled.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pay,categories=paymentoperator
// +kubebuilder:printcolumn:name="Amount",type=string,JSONPath=".status.displayAmount"
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=".spec.providerRef.name"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Provider-ID",type=string,JSONPath=".status.providerPaymentID"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type Payment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PaymentSpec `json:"spec"`

	// +optional
	Status PaymentStatus `json:"status,omitempty"`
}

// IdempotencyKey returns the key sent to the PSP with every create:
// spec.idempotencyKey when set, otherwise the Payment's UID.
func (p *Payment) IdempotencyKey() string {
	if p.Spec.IdempotencyKey != "" {
		return p.Spec.IdempotencyKey
	}
	return string(p.UID)
}

// PaymentList is a list of Payments.
// +kubebuilder:object:root=true
type PaymentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Payment `json:"items"`
}
