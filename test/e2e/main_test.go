package e2e

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
)

func TestMain(m *testing.M) {
	// The tests start the control plane through envtest, which logs through
	// controller-runtime; the processes under test log to their own files.
	ctrl.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
