package hostkeys_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestHostkeys(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "hostkeys")
}
