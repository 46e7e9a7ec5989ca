package sshdconfig_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestSSHDConfig(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "sshdconfig suite")
}
