package sshdcli

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestSSHDCommand(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "sshdcli suite")
}
