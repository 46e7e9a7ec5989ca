package rotation_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
)

func itoa(i int) string { return strconv.Itoa(i) }

// closedPort returns a 127.0.0.1 port that nothing listens on (it was just released).
var closedPort = procs.FreePort

func netSplit(addr string) (string, string, error) { return net.SplitHostPort(addr) }

// cfDeploymentPath names a file of the cf-deployment v58 reference data:
// $APP_SSH_CF_DEPLOYMENT_DIR, else ../shared/cf-deployment beside the repository. Called before
// repoRoot is known (package variables), it gives a path relative to the repository root, where
// every bosh command of this suite runs.
func cfDeploymentPath(parts ...string) string {
	dir := os.Getenv("APP_SSH_CF_DEPLOYMENT_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot, "..", "shared", "cf-deployment")
	}
	return filepath.Join(append([]string{dir}, parts...)...)
}
