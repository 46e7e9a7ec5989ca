package proxyproto

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestProxyproto(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Proxyproto Suite")
}
