package wslisten_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestWSListen(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "wslisten suite")
}
