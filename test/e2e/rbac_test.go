package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/payment-operator/payment-operator/hack/controlplane"
)

// wantClusterRole is every permission the manager needs, and no more: a
// rule in config/rbac that is not here fails the test, and a missing one
// shows up as a forbidden error in the manager's log.
var wantClusterRole = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "get"}},
	{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	{APIGroups: []string{"payments.paymentoperator.dev"}, Resources: []string{"paymentproviders"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"payments.paymentoperator.dev"}, Resources: []string{"paymentproviders/status", "payments/status"}, Verbs: []string{"patch"}},
	{APIGroups: []string{"payments.paymentoperator.dev"}, Resources: []string{"payments"}, Verbs: []string{"get", "list", "patch", "watch"}},
}

// The manifests of config/default work on an API server with RBAC: the
// built manager, run with its own ServiceAccount's token and the
// Deployment's flags, settles the samples without a forbidden error.
func TestDeployedManifestsUnderRBAC(t *testing.T) {
	stack := startStack(t, controlplane.StackOptions{SimulatorArgs: []string{"--processing-delay=1s"}, NoManager: true})
	u := user{t, stack}
	rendered := kustomizeBuild(t, stack, "config/default")

	// Everything is applied for real, the Deployment, Services and
	// NetworkPolicy too, though no kubelet runs their pods here.
	u.kubectl(string(rendered), "apply", "--server-side", "-f", "-")
	stored := u.kubectl("", "get", "deployments,services,networkpolicies,serviceaccounts,roles,rolebindings",
		"--namespace", "payment-operator-system", "-o", "name")
	for _, want := range []string{"deployment.apps/payment-operator-controller-manager", "service/payment-operator-callbacks",
		"service/payment-operator-metrics", "networkpolicy.networking.k8s.io/payment-operator-allow-callbacks-and-metrics"} {
		if !strings.Contains(stored, want) {
			t.Errorf("%s was not stored; stored: %s", want, stored)
		}
	}

	deployment, role := renderedObjects(t, rendered)
	if diff := cmp.Diff(sortedRules(wantClusterRole), sortedRules(role.Rules)); diff != "" {
		t.Errorf("the ClusterRole differs from the permissions the manager needs (-want, +got):\n%s", diff)
	}
	checkHardening(t, deployment)

	token := strings.TrimSpace(u.kubectl("", "create", "token", deployment.Spec.Template.Spec.ServiceAccountName,
		"--namespace", deployment.Namespace, "--duration=1h"))
	kubeconfig := serviceAccountKubeconfig(t, stack, token)
	metricsAddr, err := controlplane.FreeAddress()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--kubeconfig=" + kubeconfig}, deployment.Spec.Template.Spec.Containers[0].Args...)
	// Out of the cluster the manager cannot read its namespace from the pod,
	// and the ports must be free ones on loopback.
	args = append(args, "--leader-election-namespace="+deployment.Namespace, "--metrics-bind-address="+metricsAddr)
	manager, err := stack.StartManager("manager-rbac.log", stack.CallbackAddr, args...)
	if err != nil {
		t.Fatal(err)
	}
	stack.Manager = manager

	samples, err := stack.LocalSamples()
	if err != nil {
		t.Fatal(err)
	}
	u.kubectl(string(samples), "apply", "-f", "-")
	want := map[string]string{"order-1001": "Succeeded", "order-1002": "Failed", "order-1003": "RequiresAction"}
	u.waitFor(60*time.Second, "the samples to settle", func() (bool, string) {
		return equalPhases(u.phases(), want), fmt.Sprint(u.phases())
	})

	log := readFile(manager.LogPath)
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			t.Errorf("the manager was denied a permission: %s", line)
		}
	}
	if !strings.Contains(strings.ToLower(log), "successfully acquired lease") {
		t.Error("the manager did not acquire the leader election lease with its own permissions")
	}
}

func kustomizeBuild(t *testing.T, stack *controlplane.Stack, dir string) []byte {
	t.Helper()
	out, err := runCommand(filepath.Join(stack.Root, "bin", "kustomize"), "build", filepath.Join(stack.Root, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return out
}

// renderedObjects returns the manager Deployment and the ClusterRole.
func renderedObjects(t *testing.T, rendered []byte) (*appsv1.Deployment, *rbacv1.ClusterRole) {
	t.Helper()
	var deployment *appsv1.Deployment
	var role *rbacv1.ClusterRole
	for _, document := range bytes.Split(rendered, []byte("\n---\n")) {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(document, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Deployment":
			deployment = &appsv1.Deployment{}
			if err := yaml.Unmarshal(document, deployment); err != nil {
				t.Fatal(err)
			}
		case "ClusterRole":
			role = &rbacv1.ClusterRole{}
			if err := yaml.Unmarshal(document, role); err != nil {
				t.Fatal(err)
			}
		}
	}
	if deployment == nil || role == nil {
		t.Fatal("config/default renders no Deployment or no ClusterRole")
	}
	return deployment, role
}

func sortedRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	sorted := slices.Clone(rules)
	slices.SortFunc(sorted, func(a, b rbacv1.PolicyRule) int {
		return strings.Compare(strings.Join(a.APIGroups, ",")+strings.Join(a.Resources, ","), strings.Join(b.APIGroups, ",")+strings.Join(b.Resources, ","))
	})
	return sorted
}

// checkHardening checks the pod settings that the cluster cannot check
// without running the pod.
func checkHardening(t *testing.T, deployment *appsv1.Deployment) {
	t.Helper()
	spec := deployment.Spec.Template.Spec
	container := spec.Containers[0]
	security := container.SecurityContext
	switch {
	case deployment.Spec.Replicas == nil || *deployment.Spec.Replicas != 2:
		t.Error("the Deployment does not run two replicas")
	case !slices.Contains(container.Args, "--leader-elect"):
		t.Error("the manager does not run with --leader-elect")
	case container.LivenessProbe == nil || container.ReadinessProbe == nil:
		t.Error("the manager lacks a liveness or readiness probe")
	case container.Resources.Requests.Cpu().IsZero() || container.Resources.Limits.Memory().IsZero():
		t.Error("the manager lacks resource requests or a memory limit")
	case spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot:
		t.Error("the pod may run as root")
	case spec.SecurityContext.SeccompProfile == nil || spec.SecurityContext.SeccompProfile.Type != "RuntimeDefault":
		t.Error("the pod has no RuntimeDefault seccomp profile")
	case security == nil || security.ReadOnlyRootFilesystem == nil || !*security.ReadOnlyRootFilesystem:
		t.Error("the root filesystem is writable")
	case security.AllowPrivilegeEscalation == nil || *security.AllowPrivilegeEscalation:
		t.Error("privilege escalation is allowed")
	case security.Capabilities == nil || !slices.Contains(security.Capabilities.Drop, "ALL"):
		t.Error("not all capabilities are dropped")
	}
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates with token.
func serviceAccountKubeconfig(t *testing.T, stack *controlplane.Stack, token string) string {
	t.Helper()
	config := clientcmdapi.NewConfig()
	config.Clusters["local"] = &clientcmdapi.Cluster{Server: stack.Config.Host, CertificateAuthorityData: stack.Config.CAData}
	config.AuthInfos["manager"] = &clientcmdapi.AuthInfo{Token: token}
	config.Contexts["manager"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "manager"}
	config.CurrentContext = "manager"
	path := filepath.Join(stack.Dir, "manager.kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
