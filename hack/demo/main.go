// Command demo runs payment-operator end to end on this machine: a local
// control plane (etcd and kube-apiserver), the PSP simulator and the manager,
// with config/samples applied. It prints the KUBECONFIG to use and runs until
// Ctrl-C, then stops every process it started. make demo builds and runs it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/payment-operator/payment-operator/hack/controlplane"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	// envtest logs through controller-runtime; the demo prints what matters itself.
	ctrl.SetLogger(logr.Discard())
	root, err := controlplane.Root()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, ".demo")
	// A previous run's files would only confuse; its processes were stopped
	// when it ended.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}

	// Handle Ctrl-C, SIGTERM and a closed terminal from the start, so an
	// early one still cleans up. With SIGPIPE ignored, a write to a pipe
	// whose reader died with the same Ctrl-C (as in make demo | tee) fails
	// instead of killing the demo before it stops what it started.
	signal.Ignore(syscall.SIGPIPE)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)

	fmt.Println("starting etcd, kube-apiserver, the PSP simulator and the manager ...")
	stack, err := controlplane.StartStack(controlplane.StackOptions{
		Dir:           dir,
		SimulatorArgs: []string{"--processing-delay=3s"},
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping the manager, the simulator and the control plane ...")
		if err := stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: stopping:", err)
		}
	}()

	samples, err := stack.LocalSamples()
	if err != nil {
		return err
	}
	out, err := stack.Kubectl(samples, "apply", "-f", "-")
	if err != nil {
		return err
	}
	fmt.Print(out)

	fmt.Printf(`
payment-operator is running. In another shell:

export KUBECONFIG=%s
export PATH=%s:$PATH   # for the kubectl that make demo built, if you have none
kubectl get payments --watch
kubectl describe payment order-1002

Logs: %s and %s
PSP simulator: %s (GET %s/_simulator/payments lists what it holds)
Press Ctrl-C to stop everything.
`, stack.KubeconfigPath, filepath.Join(root, "bin"), stack.Manager.LogPath, stack.Simulator.LogPath, stack.SimulatorURL, stack.SimulatorURL)

	select {
	case <-signals:
		return nil
	case <-stack.Manager.Exited():
		return fmt.Errorf("the manager exited; see %s", stack.Manager.LogPath)
	case <-stack.Simulator.Exited():
		return fmt.Errorf("the simulator exited; see %s", stack.Simulator.LogPath)
	}
}
