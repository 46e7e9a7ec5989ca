package rotation_test

import (
	"path/filepath"

	"gopkg.in/yaml.v3"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// proxyProps is the part of ssh_proxy's properties the rotation changes.
type proxyProps struct {
	Diego struct {
		SSHProxy struct {
			HostKey            string   `yaml:"host_key"`
			HostKeyFingerprint string   `yaml:"host_key_fingerprint"`
			NextHostKeys       []string `yaml:"next_host_keys"`
		} `yaml:"ssh_proxy"`
	} `yaml:"diego"`
}

func renderProps(path string, args ...string) proxyProps {
	var p proxyProps
	Expect(yaml.Unmarshal(bosh(append(append([]string{"int"}, args...), "--path", path)...), &p)).To(Succeed())
	return p
}

var _ = Describe("rotation ops files for every layout", func() {
	cf := func() string { return cfDeploymentPath() }

	DescribeTable("each stage presents, announces and publishes the right variable",
		func(layout string, stage int) {
			var args []string
			var props, v string
			switch layout {
			case "bosh-lite":
				args = []string{filepath.Join(cf(), "cf-deployment.yml"), "-o", filepath.Join(cf(), "operations", "bosh-lite.yml"),
					"-o", "operations/use-app-ssh-release-bosh-lite.yml", "-o", "operations/enable-app-ssh.yml",
					"-o", "operations/rotate-host-key/bosh-lite/stage" + itoa(stage) + ".yml"}
				props, v = "/instance_groups/name=router/jobs/name=ssh_proxy/properties", "diego_ssh_proxy_host_key"
			case "standalone":
				args = []string{"manifests/app-ssh.yml", "-o", "operations/rotate-host-key/standalone/stage" + itoa(stage) + ".yml"}
				props, v = "/instance_groups/name=ssh-proxy/jobs/name=ssh_proxy/properties", "app_ssh_proxy_host_key"
			}
			p := renderProps(props, args...)
			presented, announced := v, []string{"((" + v + "_next.private_key))"}
			switch stage {
			case 2:
				presented, announced = v+"_next", []string{"((" + v + ".private_key))"}
			case 3:
				presented, announced = v+"_next", nil
			}
			Expect(p.Diego.SSHProxy.HostKey).To(Equal("((" + presented + ".private_key))"))
			Expect(p.Diego.SSHProxy.HostKeyFingerprint).To(Equal("((" + presented + ".public_key_fingerprint))"))
			Expect(p.Diego.SSHProxy.NextHostKeys).To(Equal(announced))

			var vars []struct {
				Name string `yaml:"name"`
				Type string `yaml:"type"`
			}
			Expect(yaml.Unmarshal(bosh(append(append([]string{"int"}, args...), "--path", "/variables")...), &vars)).To(Succeed())
			Expect(vars).To(ContainElement(HaveField("Name", v+"_next")))
			for _, vv := range vars {
				if vv.Name == v+"_next" {
					Expect(vv.Type).To(Equal("ssh"))
				}
			}
		},
		Entry("bosh-lite stage 1", "bosh-lite", 1),
		Entry("bosh-lite stage 2", "bosh-lite", 2),
		Entry("bosh-lite stage 3", "bosh-lite", 3),
		Entry("standalone stage 1", "standalone", 1),
		Entry("standalone stage 2", "standalone", 2),
		Entry("standalone stage 3", "standalone", 3),
	)
})
