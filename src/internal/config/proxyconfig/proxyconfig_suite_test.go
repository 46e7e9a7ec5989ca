package proxyconfig_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestProxyConfig(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Proxy Config Suite")
}
