package e2e

import (
	"debug/elf"
	"path/filepath"
	"testing"

	"github.com/payment-operator/payment-operator/hack/controlplane"
)

// make build runs hack/build-binaries.sh, the Dockerfile's build step, so
// the binaries here are the ones the distroless image needs: static, with no
// dynamic loader to ask for.
func TestBinariesAreStatic(t *testing.T) {
	root, err := controlplane.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"manager", "psp-simulator"} {
		binary, err := elf.Open(filepath.Join(root, "bin", name))
		if err != nil {
			t.Fatalf("bin/%s: %v (run make build)", name, err)
		}
		for _, program := range binary.Progs {
			if program.Type == elf.PT_INTERP {
				t.Errorf("bin/%s is dynamically linked; the distroless static image cannot run it", name)
			}
		}
		if section := binary.Section(".symtab"); section != nil {
			t.Errorf("bin/%s keeps its symbol table; the build should strip it with -s", name)
		}
		binary.Close()
	}
}
