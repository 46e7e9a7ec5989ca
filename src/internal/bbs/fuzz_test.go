package bbs

import "testing"

// FuzzUnmarshal checks that no input makes the decoders panic, and that whatever decodes
// re-encodes and decodes to the same value.
func FuzzUnmarshal(f *testing.F) {
	f.Add(ActualLRPsResponse{ActualLRPs: []ActualLRP{{ProcessGUID: "pg", Index: 1, State: StateRunning, Ports: []PortMapping{{ContainerPort: 2222}}}}}.MarshalProto())
	f.Add(DesiredLRPResponse{DesiredLRP: &DesiredLRP{ProcessGUID: "pg", Routes: map[string][]byte{"diego-ssh": []byte(`{}`)}}}.MarshalProto())
	f.Add([]byte{0x0a, 0x02, 0x08, 0x0d})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := UnmarshalActualLRPsResponse(b); err == nil {
			again, err := UnmarshalActualLRPsResponse(r.MarshalProto())
			if err != nil {
				t.Fatalf("re-decoding own encoding: %v", err)
			}
			if len(again.ActualLRPs) != len(r.ActualLRPs) {
				t.Fatalf("round trip changed LRP count: %d != %d", len(again.ActualLRPs), len(r.ActualLRPs))
			}
		}
		if r, err := UnmarshalDesiredLRPResponse(b); err == nil && r.DesiredLRP != nil {
			again, err := UnmarshalDesiredLRPResponse(r.MarshalProto())
			if err != nil {
				t.Fatalf("re-decoding own encoding: %v", err)
			}
			if again.DesiredLRP == nil || len(again.DesiredLRP.Routes) != len(r.DesiredLRP.Routes) {
				t.Fatalf("round trip changed routes")
			}
		}
		_, _ = UnmarshalActualLRPsRequest(b)
		_, _ = UnmarshalDesiredLRPByProcessGUIDRequest(b)
		_, _ = UnmarshalError(b)
	})
}
