package controllers

import (
	"math/rand/v2"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// NewBackoff returns the work-queue rate limiter for failed reconciles:
// exponential from base, doubling per failure up to maxDelay, with up to a
// fifth added as jitter so that payments that failed together (in a PSP
// outage) do not retry together.
func NewBackoff(base, maxDelay time.Duration) workqueue.TypedRateLimiter[reconcile.Request] {
	return jittered{workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](base, maxDelay)}
}

type jittered struct {
	workqueue.TypedRateLimiter[reconcile.Request]
}

func (j jittered) When(item reconcile.Request) time.Duration {
	delay := j.TypedRateLimiter.When(item)
	if fifth := int64(delay / 5); fifth > 0 {
		delay += time.Duration(rand.Int64N(fifth)) //nolint:gosec // jitter needs no secrecy
	}
	return delay
}
