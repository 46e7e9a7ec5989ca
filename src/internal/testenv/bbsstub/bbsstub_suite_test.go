package bbsstub_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestBBSStub(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "BBS Stand-in Suite")
}
