// Package controlplane runs a local Kubernetes control plane (the real etcd
// and kube-apiserver, built into bin/ by hack/build-tools.sh) with the
// payment-operator CRDs installed. make demo and the tests use it.
package controlplane

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// modulePath identifies the repository's go.mod when Root walks up to it.
const modulePath = "github.com/payment-operator/payment-operator"

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// Env is the envtest environment that started the processes.
	Env *envtest.Environment
	// Config reaches the API server as a member of system:masters.
	Config *rest.Config
	// KubeconfigPath is an absolute path to a kubeconfig for Config.
	KubeconfigPath string
}

// Options adjust the control plane.
type Options struct {
	// Dir is the existing folder that receives the kubeconfig.
	Dir string
	// APIServerFlags are extra kube-apiserver flags, such as
	// "authorization-mode" (RBAC is the default).
	APIServerFlags map[string]string
}

// Root returns the repository's top folder, found by walking up from the
// working directory to the go.mod of the main module.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isMainModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func isMainModule(goMod string) bool {
	file, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == modulePath
		}
	}
	return false
}

// BinDir returns the folder with kube-apiserver, etcd and kubectl:
// $KUBEBUILDER_ASSETS when set, otherwise the repository's bin/.
func BinDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	root, err := Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

// Start starts etcd and kube-apiserver, installs the CRDs from
// config/crd/bases and writes a kubeconfig into opts.Dir.
func Start(opts Options) (*ControlPlane, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run 'make control-plane' (or make test, which runs it) to build it", name, binDir)
		}
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory: binDir,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	apiServer := env.ControlPlane.GetAPIServer()
	for name, value := range opts.APIServerFlags {
		apiServer.Configure().Set(name, value)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", binDir, err)
	}

	cp := &ControlPlane{Env: env, Config: cfg}
	if opts.Dir != "" {
		if cp.KubeconfigPath, err = cp.WriteKubeconfig(filepath.Join(opts.Dir, "kubeconfig"), "admin", "system:masters"); err != nil {
			return nil, errors.Join(err, env.Stop())
		}
	}
	return cp, nil
}

// WriteKubeconfig writes a kubeconfig for a user with client certificates
// in the given groups and returns its absolute path.
func (cp *ControlPlane) WriteKubeconfig(path, user string, groups ...string) (string, error) {
	authenticated, err := cp.Env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("adding user %s: %w", user, err)
	}
	kubeconfig, err := authenticated.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("rendering the kubeconfig of %s: %w", user, err)
	}
	path, err = filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return "", fmt.Errorf("writing kubeconfig: %w", err)
	}
	return path, nil
}

// APIServerPID returns the process id of this control plane's kube-apiserver,
// found by its --secure-port flag, so a fault test can stop and resume it.
func (cp *ControlPlane) APIServerPID() (int, error) {
	port := cp.Env.ControlPlane.GetAPIServer().SecureServing.Port
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if filepath.Base(args[0]) == "kube-apiserver" && slices.Contains(args, "--secure-port="+port) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no kube-apiserver process with --secure-port=%s", port)
}

// Stop stops kube-apiserver and etcd and removes their data.
func (cp *ControlPlane) Stop() error {
	return cp.Env.Stop()
}
