package uaa_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestUAA(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "UAA Client Suite")
}
