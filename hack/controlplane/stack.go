package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// The in-cluster URLs in config/samples, which a local stack replaces with
// the addresses of its own processes.
const (
	samplesSimulatorURL = "http://payment-operator-psp-simulator.payment-operator-system.svc:8090"
	samplesCallbackURL  = "http://payment-operator-callbacks.payment-operator-system.svc:9443"
)

// Stack is a local control plane with the built psp-simulator and manager
// binaries running against it, as make demo and the end-to-end tests use it.
type Stack struct {
	*ControlPlane
	// Root is the repository's top folder.
	Root string
	// Dir holds the kubeconfig and the processes' logs.
	Dir string
	// SimulatorURL and CallbackURL are the base URLs of the simulator's API
	// and of the manager's callback server.
	SimulatorURL, CallbackURL string
	// CallbackAddr is the listen address of the first manager's callback server.
	CallbackAddr string
	// Simulator and Manager are the running binaries. Managers started
	// later with StartManager are stopped by Stop too.
	Simulator, Manager *Process
	managers           []*Process
}

// StartManager starts bin/manager against the stack with its callback
// server on callbackAddr and waits until it is ready. The log goes to
// logName in the stack's folder. A --kubeconfig among args replaces the
// stack's admin kubeconfig, and later flags override earlier ones.
func (s *Stack) StartManager(logName, callbackAddr string, args ...string) (*Process, error) {
	probeAddr, err := FreeAddress()
	if err != nil {
		return nil, err
	}
	managerArgs := append([]string{
		"--kubeconfig=" + s.KubeconfigPath,
		"--metrics-bind-address=0",
	}, args...)
	managerArgs = append(managerArgs,
		"--callback-bind-address="+callbackAddr,
		"--health-probe-bind-address="+probeAddr)
	manager, err := StartProcess(filepath.Join(s.Dir, logName), filepath.Join(s.Root, "bin", "manager"), managerArgs...)
	if err != nil {
		return nil, err
	}
	s.managers = append(s.managers, manager)
	if err := waitForHTTP("http://"+probeAddr+"/readyz", 30*time.Second); err != nil {
		return nil, fmt.Errorf("the manager did not become ready (see %s): %w", manager.LogPath, err)
	}
	return manager, nil
}

// StackOptions adjust a Stack.
type StackOptions struct {
	// Dir is the folder for the kubeconfig and the logs, created if missing.
	Dir string
	// SimulatorArgs and ManagerArgs are added to each binary's flags.
	SimulatorArgs, ManagerArgs []string
	// NoManager leaves the manager to the caller's StartManager.
	NoManager bool
}

// StartStack starts etcd, kube-apiserver, bin/psp-simulator and bin/manager.
func StartStack(opts StackOptions) (*Stack, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"manager", "psp-simulator"} {
		if _, err := os.Stat(filepath.Join(root, "bin", name)); err != nil {
			return nil, fmt.Errorf("bin/%s not found: run 'make build' first", name)
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}

	cp, err := Start(Options{Dir: dir})
	if err != nil {
		return nil, err
	}
	stack := &Stack{ControlPlane: cp, Root: root, Dir: dir}

	simulatorArgs := append([]string{"--listen=127.0.0.1:0"}, opts.SimulatorArgs...)
	stack.Simulator, err = StartProcess(filepath.Join(dir, "psp-simulator.log"), filepath.Join(root, "bin", "psp-simulator"), simulatorArgs...)
	if err != nil {
		return nil, errors.Join(err, stack.Stop())
	}
	address, err := stack.Simulator.WaitForLog(regexp.MustCompile(`listening on (\S+:\d+)`), 20*time.Second)
	if err != nil {
		return nil, errors.Join(err, stack.Stop())
	}
	stack.SimulatorURL = "http://" + address

	if stack.CallbackAddr, err = FreeAddress(); err != nil {
		return nil, errors.Join(err, stack.Stop())
	}
	stack.CallbackURL = "http://" + stack.CallbackAddr
	if opts.NoManager {
		return stack, nil
	}
	stack.Manager, err = stack.StartManager("manager.log", stack.CallbackAddr, opts.ManagerArgs...)
	if err != nil {
		return nil, errors.Join(err, stack.Stop())
	}
	return stack, nil
}

// LocalSamples returns config/samples rendered by kustomize, with the
// in-cluster URLs replaced by the stack's simulator and callback server.
func (s *Stack) LocalSamples() ([]byte, error) {
	rendered, err := exec.Command(filepath.Join(s.Root, "bin", "kustomize"), "build", filepath.Join(s.Root, "config", "samples")).Output()
	if err != nil {
		return nil, fmt.Errorf("kustomize build config/samples: %w", err)
	}
	rendered = bytes.ReplaceAll(rendered, []byte(samplesSimulatorURL), []byte(s.SimulatorURL))
	return bytes.ReplaceAll(rendered, []byte(samplesCallbackURL), []byte(s.CallbackURL)), nil
}

// Kubectl runs bin/kubectl with the stack's kubeconfig and returns its
// combined output.
func (s *Stack) Kubectl(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(s.Root, "bin", "kubectl"), append([]string{"--kubeconfig=" + s.KubeconfigPath}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Stop stops the manager, the simulator and the control plane, in that order.
func (s *Stack) Stop() error {
	var errs []error
	for _, process := range append(s.managers, s.Simulator) {
		if process != nil {
			errs = append(errs, process.Stop(10*time.Second))
		}
	}
	return errors.Join(append(errs, s.ControlPlane.Stop())...)
}

// Process is a started binary whose output goes to a log file.
type Process struct {
	Cmd     *exec.Cmd
	LogPath string
	exited  chan struct{}
}

// StartProcess starts a binary in its own process group, so that a Ctrl-C
// in the terminal reaches only the program that started it, which then
// stops it in order.
func StartProcess(logPath, binary string, args ...string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	process := &Process{Cmd: cmd, LogPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(process.exited)
	}()
	return process, nil
}

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM and, after grace, SIGKILL, and waits for the exit.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	_ = p.Cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", filepath.Base(p.Cmd.Path), grace)
}

// Kill stops the process at once with SIGKILL, as a crash would.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.exited
}

// WaitForLog waits until a line of the log matches pattern and returns the
// first submatch.
func (p *Process) WaitForLog(pattern *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if match := findInFile(p.LogPath, pattern); match != nil {
			return match[1], nil
		}
		select {
		case <-p.exited:
			return "", fmt.Errorf("%s exited before logging %q (see %s)", filepath.Base(p.Cmd.Path), pattern, p.LogPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%s did not log %q within %s (see %s)", filepath.Base(p.Cmd.Path), pattern, timeout, p.LogPath)
}

func findInFile(path string, pattern *regexp.Regexp) []string {
	file, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if match := pattern.FindStringSubmatch(scanner.Text()); match != nil {
			return match
		}
	}
	return nil
}

// FreeAddress returns a loopback address with a port that was free a moment ago.
func FreeAddress() (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer listener.Close()
	return listener.Addr().String(), nil
}

func waitForHTTP(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: no 200 within %s: %w", url, timeout, errors.Join(ctx.Err(), err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
