package applog_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestAppLog(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "AppLog Suite")
}
