// Package v1alpha1 contains the API of payment-operator: the Payment and
// PaymentProvider resources of group payments.paymentoperator.dev.
//
// +kubebuilder:object:generate=true
// +groupName=payments.paymentoperator.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every resource in this package.
	GroupVersion = schema.GroupVersion{Group: "payments.paymentoperator.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &Payment{}, &PaymentList{}, &PaymentProvider{}, &PaymentProviderList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
