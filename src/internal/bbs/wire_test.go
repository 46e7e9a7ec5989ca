package bbs_test

import (
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/app-ssh/app-ssh/internal/bbs"
)

// msg assembles protobuf wire bytes field by field, the way a BBS built from the published
// models would put them on the wire. Field numbers are written out literally here, from
// cloudfoundry/bbs models/*.proto, so this test pins the real format independently of the
// package's own encoder.
type msg []byte

func (m msg) str(n protowire.Number, s string) msg {
	b := protowire.AppendTag(m, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func (m msg) bytes(n protowire.Number, v []byte) msg {
	b := protowire.AppendTag(m, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func (m msg) sub(n protowire.Number, v msg) msg { return m.bytes(n, v) }

func (m msg) varint(n protowire.Number, v uint64) msg {
	b := protowire.AppendTag(m, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func (m msg) fixed64(n protowire.Number, v uint64) msg {
	b := protowire.AppendTag(m, n, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func (m msg) fixed32(n protowire.Number, v uint32) msg {
	b := protowire.AppendTag(m, n, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

func (m msg) group(n protowire.Number, inner msg) msg {
	b := protowire.AppendTag(m, n, protowire.StartGroupType)
	b = append(b, inner...)
	return protowire.AppendTag(b, n, protowire.EndGroupType)
}

// mapEntry is a map<string, string|bytes> entry: 1 key, 2 value.
func mapEntry(k string, v []byte) msg { return msg{}.str(1, k).bytes(2, v) }

func realisticActualLRPsResponse() []byte {
	running := msg{}.
		// 1 actual_lrp_key {1 process_guid, 2 index, 3 domain}
		sub(1, msg{}.str(1, "9f5c7a8e-1b2c-4d3e-8f90-123456789abc-4b2f9c3d").varint(2, 1).str(3, "cf-apps")).
		// 2 actual_lrp_instance_key {1 instance_guid, 2 cell_id}
		sub(2, msg{}.str(1, "b6a1e2f3-4c5d-4e6f-7a8b-9c0d").str(2, "diego-cell-3f1a")).
		// 3 actual_lrp_net_info {1 address, 2 ports, 3 instance_address, 4 preferred_address}
		sub(3, msg{}.
									str(1, "10.0.16.21").
									sub(2, msg{}.varint(1, 8080).varint(2, 61001).varint(3, 61443).varint(4, 61002)).
									sub(2, msg{}.varint(1, 2222).varint(2, 61003).varint(3, 61444).varint(4, 61004).varint(9, 7)).
									str(3, "10.255.77.12").
									varint(4, 1). // INSTANCE
									str(15, "a future net-info field")).
		varint(4, 2).                                       // crash_count
		str(5, "APP/PROC/WEB: Exited with status 1").       // crash_reason
		str(6, "RUNNING").                                  // state
		str(7, "").                                         // placement_error
		varint(8, 1700000000123456789).                     // since (int64 nanoseconds)
		sub(9, msg{}.str(1, "e1f2a3b4").varint(2, 42)).     // modification_tag {1 epoch, 2 index}
		varint(10, 0).                                      // presence ORDINARY
		sub(11, msg{}.str(1, "app.apps.internal")).         // actual_lrp_internal_routes
		sub(12, mapEntry("source_id", []byte("app-guid"))). // metric_tags
		sub(12, mapEntry("instance_id", []byte("1"))).
		varint(13, 1).                  // routable (oneof optional_routable)
		str(14, "z1").                  // availability_zone
		fixed64(1000, 0xdeadbeef).      // unknown fixed64
		fixed32(1001, 7).               // unknown fixed32
		group(1002, msg{}.varint(1, 3)) // unknown group

	claimed := msg{}.
		sub(1, msg{}.str(1, "other-process-guid").varint(2, 0).str(3, "cf-apps")). // index 0 omitted or explicit
		sub(2, msg{}.str(1, "c7d8e9f0").str(2, "diego-cell-77")).
		str(6, "CLAIMED").
		varint(8, 1700000001000000000).
		sub(9, msg{}.str(1, "epoch-2").varint(2, 1)).
		varint(10, 1). // EVACUATING
		varint(13, 0).
		str(14, "z2")

	return msg{}.sub(2, running).sub(2, claimed).str(3, "unknown top-level field")
}

func realisticDesiredLRPResponse() []byte {
	sshRoute := `{"container_port":2222,"host_fingerprint":"a6:14:c0:ea:42:07:b2:f7:53:2c:0b:60:e0:00:21:6c","host_256_fingerprint":"nVJ9Yq0yZ1a6Qe0g7zJ3Pz5mJp7VgC0L8q5bNqkV0RY","private_key":"-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----\n","user":"vcap","password":""}`
	cfRouter := `[{"hostnames":["myapp.example.com"],"port":8080,"route_service_url":null,"isolation_segment":null}]`
	tcpRouter := `[]`

	routes := msg{}.
		sub(1, mapEntry("cf-router", []byte(cfRouter))).
		sub(1, mapEntry(bbs.DiegoSSHRouteKey, []byte(sshRoute))).
		sub(1, mapEntry("tcp-router", []byte(tcpRouter))).
		sub(1, mapEntry("internal-router", []byte(`[{"hostname":"app.apps.internal"}]`)))

	// An Action (models/actions.proto) wrapping a nested action message. Its contents do not
	// matter here: the decoder must skip the whole field.
	runAction := msg{}.sub(3, msg{}.
		str(1, "/tmp/lifecycle/launcher").
		str(2, "app").
		str(2, "bundle exec rackup").
		str(4, "vcap"))

	desired := msg{}.
		str(1, "9f5c7a8e-1b2c-4d3e-8f90-123456789abc-4b2f9c3d").                         // process_guid
		str(2, "cf-apps").                                                               // domain
		str(3, "preloaded:cflinuxfs4").                                                  // root_fs
		varint(4, 3).                                                                    // instances
		sub(5, msg{}.str(1, "VCAP_APPLICATION").str(2, `{"application_name":"myapp"}`)). // environment_variables
		sub(5, msg{}.str(1, "PORT").str(2, "8080")).
		sub(6, msg{}.sub(2, msg{}.str(1, "http://file-server/lifecycle.tgz").str(2, "/tmp/lifecycle"))). // setup
		sub(7, runAction).                                                                               // action
		varint(27, 60000).                                                                               // start_timeout_ms
		varint(10, 1024).                                                                                // disk_mb
		varint(11, 256).                                                                                 // memory_mb
		varint(12, 2).                                                                                   // cpu_weight
		varint(13, 0).                                                                                   // privileged
		varint(14, 8080).                                                                                // ports (unpacked repeated uint32)
		varint(14, 2222).
		sub(15, routes).                                                     // routes ProtoRoutes
		str(16, "CELL").                                                     // log_source
		str(17, "app-guid").                                                 // log_guid
		str(18, "app-guid").                                                 // metrics_guid
		str(19, `{"phase":"running"}`).                                      // annotation
		sub(21, msg{}.str(1, "epoch").varint(2, 5)).                         // modification_tag
		str(24, "/etc/cf-system-certificates").                              // trusted_system_certificates_path
		str(28, "isolation-segment-a").                                      // PlacementTags
		varint(29, 1024).                                                    // max_pids
		sub(35, msg{}.str(1, "source_id").sub(2, msg{}.str(1, "app-guid"))). // metric_tags
		sub(35, msg{}.str(1, "instance_id").sub(2, msg{}.varint(2, 1))).     // dynamic INDEX
		sub(35, msg{}.str(1, "instance_guid").sub(2, msg{}.varint(2, 2))).   // dynamic INSTANCE_GUID
		sub(35, msg{}.str(1, "app_name").sub(2, msg{}.str(1, "myapp"))).
		sub(37, msg{}.varint(1, 16384)) // log_rate_limit

	return msg{}.sub(2, desired).fixed32(500, 1)
}

var _ = Describe("wire format against hand-assembled BBS bytes", func() {
	It("decodes a realistic ActualLRPsResponse, skipping the fields it ignores", func() {
		resp, err := bbs.UnmarshalActualLRPsResponse(realisticActualLRPsResponse())
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Error).To(BeNil())
		Expect(resp.ActualLRPs).To(Equal([]bbs.ActualLRP{
			{
				ProcessGUID: "9f5c7a8e-1b2c-4d3e-8f90-123456789abc-4b2f9c3d", Index: 1, Domain: "cf-apps",
				InstanceGUID: "b6a1e2f3-4c5d-4e6f-7a8b-9c0d", CellID: "diego-cell-3f1a",
				State: bbs.StateRunning, Presence: bbs.PresenceOrdinary,
				Address: "10.0.16.21", InstanceAddress: "10.255.77.12", PreferredAddress: bbs.PreferredAddressInstance,
				Ports: []bbs.PortMapping{
					{ContainerPort: 8080, HostPort: 61001, ContainerTLSProxyPort: 61443, HostTLSProxyPort: 61002},
					{ContainerPort: 2222, HostPort: 61003, ContainerTLSProxyPort: 61444, HostTLSProxyPort: 61004},
				},
			},
			{
				ProcessGUID: "other-process-guid", Index: 0, Domain: "cf-apps",
				InstanceGUID: "c7d8e9f0", CellID: "diego-cell-77",
				State: bbs.StateClaimed, Presence: bbs.PresenceEvacuating,
			},
		}))
	})

	It("decodes a realistic DesiredLRPResponse, keeping every route's raw JSON", func() {
		resp, err := bbs.UnmarshalDesiredLRPResponse(realisticDesiredLRPResponse())
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Error).To(BeNil())
		d := resp.DesiredLRP
		Expect(d).NotTo(BeNil())
		Expect(d.ProcessGUID).To(Equal("9f5c7a8e-1b2c-4d3e-8f90-123456789abc-4b2f9c3d"))
		Expect(d.Routes).To(HaveLen(4))
		Expect(d.Routes).To(HaveKey("cf-router"))
		var cfRoutes []map[string]any
		Expect(json.Unmarshal(d.Routes["cf-router"], &cfRoutes)).To(Succeed())
		Expect(cfRoutes[0]["port"]).To(BeEquivalentTo(8080))
		Expect(string(d.Routes["tcp-router"])).To(Equal("[]"))

		route, err := d.SSHRoute()
		Expect(err).NotTo(HaveOccurred())
		Expect(route.ContainerPort).To(Equal(uint32(2222)))
		Expect(route.HostFingerprint).To(Equal("a6:14:c0:ea:42:07:b2:f7:53:2c:0b:60:e0:00:21:6c"))
		Expect(route.Host256Fingerprint).To(Equal("nVJ9Yq0yZ1a6Qe0g7zJ3Pz5mJp7VgC0L8q5bNqkV0RY"))
		Expect(route.User).To(Equal("vcap"))
		Expect(route.PrivateKey).To(HavePrefix("-----BEGIN RSA PRIVATE KEY-----\n"))

		Expect(d.LogGUID).To(Equal("app-guid"))
		Expect(d.MetricTags).To(Equal(map[string]bbs.MetricTagValue{
			"source_id":     {Static: "app-guid"},
			"instance_id":   {Dynamic: bbs.MetricTagIndex},
			"instance_guid": {Dynamic: bbs.MetricTagInstanceGUID},
			"app_name":      {Static: "myapp"},
		}))
	})

	It("resolves metric tag values for one instance", func() {
		v, ok := bbs.MetricTagValue{Static: "s"}.Resolve(3, "ig")
		Expect(v).To(Equal("s"))
		Expect(ok).To(BeTrue())
		v, ok = bbs.MetricTagValue{Dynamic: bbs.MetricTagIndex}.Resolve(3, "ig")
		Expect(v).To(Equal("3"))
		Expect(ok).To(BeTrue())
		v, ok = bbs.MetricTagValue{Dynamic: bbs.MetricTagInstanceGUID}.Resolve(3, "ig")
		Expect(v).To(Equal("ig"))
		Expect(ok).To(BeTrue())
		_, ok = bbs.MetricTagValue{Dynamic: 9}.Resolve(3, "ig")
		Expect(ok).To(BeFalse())
	})

	It("decodes BBS error answers", func() {
		b := msg{}.sub(1, msg{}.varint(1, 13).str(2, "the requested resource could not be found"))
		resp, err := bbs.UnmarshalDesiredLRPResponse(b)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.DesiredLRP).To(BeNil())
		Expect(resp.Error).To(Equal(&bbs.Error{Type: bbs.ResourceNotFound, Message: "the requested resource could not be found"}))
		Expect(resp.Error).To(MatchError(bbs.ErrResourceNotFound))
		Expect(resp.Error.Error()).To(Equal("BBS error ResourceNotFound: the requested resource could not be found"))

		lrps, err := bbs.UnmarshalActualLRPsResponse(msg{}.sub(1, msg{}.varint(1, 28).str(2, "deadlock")))
		Expect(err).NotTo(HaveOccurred())
		Expect(lrps.Error.Type).To(Equal(bbs.Deadlock))
		Expect(lrps.Error).NotTo(MatchError(bbs.ErrResourceNotFound))
	})

	It("encodes requests with BBS's field numbers", func() {
		zero := int32(0)
		Expect(bbs.ActualLRPsRequest{ProcessGUID: "pg", Index: &zero}.MarshalProto()).To(Equal([]byte(msg{}.str(3, "pg").varint(4, 0))))
		Expect(bbs.ActualLRPsRequest{ProcessGUID: "pg"}.MarshalProto()).To(Equal([]byte(msg{}.str(3, "pg"))))
		Expect(bbs.DesiredLRPByProcessGUIDRequest{ProcessGUID: "pg"}.MarshalProto()).To(Equal([]byte(msg{}.str(1, "pg"))))
	})

	It("decodes requests, including an explicit index 0 and a negative index", func() {
		r, err := bbs.UnmarshalActualLRPsRequest(msg{}.str(1, "cf-apps").str(2, "cell").str(3, "pg").varint(4, 0))
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Domain).To(Equal("cf-apps"))
		Expect(r.CellID).To(Equal("cell"))
		Expect(r.ProcessGUID).To(Equal("pg"))
		Expect(r.Index).To(HaveValue(Equal(int32(0))))

		neg := int32(-1)
		r, err = bbs.UnmarshalActualLRPsRequest(bbs.ActualLRPsRequest{Index: &neg}.MarshalProto())
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Index).To(HaveValue(Equal(int32(-1))))

		r, err = bbs.UnmarshalActualLRPsRequest(msg{}.str(3, "pg"))
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Index).To(BeNil())
	})

	It("round-trips its own encodings", func() {
		lrps := []bbs.ActualLRP{{
			ProcessGUID: "pg", Index: 3, Domain: "d", InstanceGUID: "ig", CellID: "c", State: bbs.StateRunning,
			Presence: bbs.PresenceSuspect, Address: "1.2.3.4", InstanceAddress: "5.6.7.8",
			PreferredAddress: bbs.PreferredAddressHost, Ports: []bbs.PortMapping{{ContainerPort: 2222, HostPort: 1}},
		}}
		resp, err := bbs.UnmarshalActualLRPsResponse(bbs.ActualLRPsResponse{ActualLRPs: lrps}.MarshalProto())
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.ActualLRPs).To(Equal(lrps))

		d := bbs.DesiredLRP{ProcessGUID: "pg", Routes: map[string][]byte{"b": []byte(`{}`), "a": {}}, LogGUID: "lg",
			MetricTags: map[string]bbs.MetricTagValue{"x": {Static: "1"}, "y": {Dynamic: bbs.MetricTagInstanceGUID}}}
		dr, err := bbs.UnmarshalDesiredLRPResponse(bbs.DesiredLRPResponse{DesiredLRP: &d}.MarshalProto())
		Expect(err).NotTo(HaveOccurred())
		Expect(*dr.DesiredLRP).To(Equal(d))

		e := &bbs.Error{Type: bbs.Timeout, Message: "slow"}
		dr, err = bbs.UnmarshalDesiredLRPResponse(bbs.DesiredLRPResponse{Error: e}.MarshalProto())
		Expect(err).NotTo(HaveOccurred())
		Expect(dr.Error).To(Equal(e))
	})

	It("rejects truncated bytes instead of guessing", func() {
		full := realisticActualLRPsResponse()
		_, err := bbs.UnmarshalActualLRPsResponse(full[:len(full)/2])
		Expect(err).To(HaveOccurred())
		_, err = bbs.UnmarshalDesiredLRPResponse([]byte{0x12, 0x05, 0x0a})
		Expect(err).To(HaveOccurred())
	})

	It("reports a missing or broken diego-ssh route", func() {
		_, err := (&bbs.DesiredLRP{}).SSHRoute()
		Expect(err).To(MatchError(bbs.ErrNoSSHRoute))
		_, err = (&bbs.DesiredLRP{Routes: map[string][]byte{"diego-ssh": []byte(`{"private_key":"SECRET`)}}).SSHRoute()
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).NotTo(ContainSubstring("SECRET"))
		_, err = (&bbs.DesiredLRP{Routes: map[string][]byte{"diego-ssh": []byte(`{"user":"vcap"}`)}}).SSHRoute()
		Expect(err).To(MatchError(ContainSubstring("container_port")))
	})
})
