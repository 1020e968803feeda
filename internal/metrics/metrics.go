// Package metrics defines the operator's Prometheus metrics, served with
// controller-runtime's own on the manager's metrics endpoint.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// Callbacks counts the callback requests the callback server responded to, by HTTP status code.
	Callbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payment_operator_callbacks_total",
		Help: "Callback requests answered by the callback server, by HTTP status code.",
	}, []string{"code"})

	// PSPRequests counts the calls to PSPs, by operation and outcome.
	PSPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payment_operator_psp_requests_total",
		Help: "Calls to PSPs by operation (create, get, find, cancel) and outcome (ok, transient, permanent, unauthorized, not found, conflict).",
	}, []string{"operation", "outcome"})

	// Settled counts payments that reached a terminal phase, by phase and by
	// the path that found out (callback or poll).
	Settled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payment_operator_payments_settled_total",
		Help: "Payments that reached a terminal phase, by phase and by the path that recorded it (callback, poll, submit).",
	}, []string{"phase", "path"})
)

func init() {
	crmetrics.Registry.MustRegister(Callbacks, PSPRequests, Settled)
}

// Callback records the status code of one callback response.
func Callback(code int) {
	Callbacks.WithLabelValues(strconv.Itoa(code)).Inc()
}
