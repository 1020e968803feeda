package controllers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/hack/controlplane"
	"github.com/payment-operator/payment-operator/internal/operator"
	"github.com/payment-operator/payment-operator/simulator"
)

// The suite runs the operator in this process against a real kube-apiserver
// and etcd, with a real PSP simulator per test over HTTP on loopback.
var (
	k8sClient   client.Client
	watchClient client.WithWatch
	callbackURL string // base URL of the operator's callback server
	namespaces  atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(zapcore.Level(zapLevel()))))
	cp, err := controlplane.Start(controlplane.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start the control plane:", err)
		return 1
	}
	defer func() { _ = cp.Stop() }()

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	watchClient, err = client.NewWithWatch(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	callbackAddr := freeAddress()
	callbackURL = "http://" + callbackAddr
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = operator.Setup(ctx, mgr, operator.Options{
		CallbackAddr:  callbackAddr,
		PSPTimeout:    2 * time.Second,
		BackoffBase:   200 * time.Millisecond,
		BackoffMax:    2 * time.Second,
		Concurrency:   4,
		CancelTimeout: 10 * time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	defer func() { cancel(); <-stopped }()

	return m.Run()
}

func zapLevel() int8 {
	if testing.Verbose() {
		return -1 // debug
	}
	return int8(zapcore.DPanicLevel) // quiet: the tests report what matters
}

func freeAddress() string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer listener.Close()
	return listener.Addr().String()
}

// psp is one simulator, reached over HTTP, with the namespace of a test and
// a PaymentProvider pointing at it.
type psp struct {
	sim       *simulator.Server
	url       string
	namespace string
	provider  string
}

// newPSP starts a simulator with cfg, creates a namespace with the API key
// Secret and a PaymentProvider named "simulator", and waits until the
// provider is Ready.
func newPSP(t *testing.T, cfg simulator.Config, pollInterval time.Duration) *psp {
	t.Helper()
	sim := simulator.New(cfg)
	server := httptest.NewServer(sim.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = sim.Run(ctx) }()
	t.Cleanup(func() { cancel(); sim.Close(); server.Close() })

	p := &psp{sim: sim, url: server.URL, namespace: fmt.Sprintf("test-%d", namespaces.Add(1)), provider: "simulator"}
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.namespace}})
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "simulator-credentials", Namespace: p.namespace},
		StringData: map[string]string{"apiKey": simulator.DefaultAPIKey},
	})
	p.createProvider(t, p.provider, pollInterval)
	waitFor(t, 20*time.Second, "provider Ready", func() (bool, string) {
		var provider v1alpha1.PaymentProvider
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: p.provider}, &provider); err != nil {
			return false, err.Error()
		}
		return meta.IsStatusConditionTrue(provider.Status.Conditions, v1alpha1.ConditionReady), fmt.Sprint(provider.Status.Conditions)
	})
	return p
}

func (p *psp) createProvider(t *testing.T, name string, pollInterval time.Duration) {
	t.Helper()
	create(t, &v1alpha1.PaymentProvider{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.namespace},
		Spec: v1alpha1.PaymentProviderSpec{
			Type:                 v1alpha1.ProviderSimulator,
			Endpoint:             p.url,
			CredentialsSecretRef: v1alpha1.SecretKeyReference{Name: "simulator-credentials", Key: "apiKey"},
			Webhook: v1alpha1.WebhookSpec{
				URL:              fmt.Sprintf("%s/hooks/%s/%s", callbackURL, p.namespace, name),
				SigningSecretRef: v1alpha1.SecretKeyReference{Name: name + "-signing", Key: "secret"},
			},
			PollInterval: &metav1.Duration{Duration: pollInterval},
		},
	})
}

// createPayment creates a Payment of 19.99 USD with the token.
func (p *psp) createPayment(t *testing.T, name, token string) *v1alpha1.Payment {
	t.Helper()
	payment := &v1alpha1.Payment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.namespace},
		Spec: v1alpha1.PaymentSpec{
			ProviderRef:   v1alpha1.LocalObjectReference{Name: p.provider},
			Amount:        1999,
			Currency:      "USD",
			PaymentMethod: token,
			Description:   "integration test " + name,
		},
	}
	create(t, payment)
	return payment
}

// chargesFor returns how many payments the simulator holds for the key.
func (p *psp) chargesFor(key string) int {
	count := 0
	for _, payment := range p.sim.Payments() {
		if payment.IdempotencyKey == key {
			count++
		}
	}
	return count
}

// signingSecret returns the callback signing secret the operator stored.
func (p *psp) signingSecret(t *testing.T) string {
	t.Helper()
	var secret corev1.Secret
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: p.provider + "-signing"}, &secret); err != nil {
		t.Fatal(err)
	}
	return string(secret.Data["secret"])
}

// sendCallback posts a callback about payment in the given status, signed
// with the secret the operator stored, and returns the HTTP status code.
func (p *psp) sendCallback(t *testing.T, payment *v1alpha1.Payment, providerID, status string) int {
	t.Helper()
	return postSignedCallback(t, p, p.signingSecret(t), payment, providerID, status)
}

func postSigned(t *testing.T, url, secret string, body []byte) int {
	t.Helper()
	signer, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("msg_%d", time.Now().UnixNano())
	now := time.Now()
	signature, err := signer.Sign(id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
	req.Header.Set("webhook-signature", signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func getPayment(t *testing.T, payment *v1alpha1.Payment) *v1alpha1.Payment {
	t.Helper()
	fresh := &v1alpha1.Payment{}
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(payment), fresh); err != nil {
		t.Fatal(err)
	}
	return fresh
}

// waitForPhase waits until the payment reaches phase and returns it.
func waitForPhase(t *testing.T, payment *v1alpha1.Payment, phase v1alpha1.PaymentPhase, timeout time.Duration) *v1alpha1.Payment {
	t.Helper()
	var latest v1alpha1.Payment
	waitFor(t, timeout, "payment "+payment.Name+" in phase "+string(phase), func() (bool, string) {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(payment), &latest); err != nil {
			return false, err.Error()
		}
		return latest.Status.Phase == phase, fmt.Sprintf("phase %q, conditions %v", latest.Status.Phase, latest.Status.Conditions)
	})
	return &latest
}

// waitFor polls check every 100ms until it returns true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventReasons returns the reasons of the Events recorded about an object.
func eventReasons(t *testing.T, obj client.Object) []string {
	t.Helper()
	var list corev1.EventList
	if err := k8sClient.List(context.Background(), &list, client.InNamespace(obj.GetNamespace())); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, event := range list.Items {
		if event.InvolvedObject.UID == obj.GetUID() {
			reasons = append(reasons, event.Reason)
		}
	}
	return reasons
}

func hasReason(reasons []string, want string) bool {
	for _, reason := range reasons {
		if reason == want {
			return true
		}
	}
	return false
}

// postSignedCallback posts a callback to p's provider path signed with secret.
func postSignedCallback(t *testing.T, p *psp, secret string, payment *v1alpha1.Payment, providerID, status string) int {
	t.Helper()
	body := fmt.Sprintf(`{"id":"evt_%d","type":"payment.%s","created":%d,"data":{"object":{"id":%q,"status":%q,"amount":%d,"currency":%q,"metadata":{"namespace":%q,"name":%q,"uid":%q}}}}`,
		time.Now().UnixNano(), status, time.Now().Unix(), providerID, status, payment.Spec.Amount, payment.Spec.Currency,
		payment.Namespace, payment.Name, payment.UID)
	return postSigned(t, fmt.Sprintf("%s/hooks/%s/%s", callbackURL, p.namespace, p.provider), secret, []byte(body))
}

// callbackEndpoints returns how many callback endpoints the simulator holds.
func (p *psp) callbackEndpoints(t *testing.T) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.url+"/v1/callback_endpoints", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+simulator.DefaultAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return len(list.Data)
}
