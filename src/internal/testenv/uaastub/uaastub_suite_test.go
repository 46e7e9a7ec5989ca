package uaastub_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestUAAStub(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "UAA Stand-in Suite")
}
