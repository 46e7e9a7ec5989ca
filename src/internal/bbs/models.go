package bbs

import (
	"fmt"
	"sort"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// The messages below are hand-coded with protowire. Each names the cloudfoundry/bbs models
// file its field numbers and types were read from. Only the fields the ssh-proxy needs are
// decoded; every other field (known to BBS or added later) is skipped by wire type, so new
// or ignored fields cannot break decoding. Encoders write only the fields listed here.

// ActualLRP states, as BBS spells them (models/actual_lrp.go).
const (
	StateUnclaimed = "UNCLAIMED"
	StateClaimed   = "CLAIMED"
	StateRunning   = "RUNNING"
	StateCrashed   = "CRASHED"
)

// Presence is ActualLRP.Presence (models/actual_lrp.proto, enum ActualLRP.Presence).
type Presence int32

// Presence values.
const (
	PresenceOrdinary   Presence = 0
	PresenceEvacuating Presence = 1
	PresenceSuspect    Presence = 2
)

func (p Presence) String() string {
	switch p {
	case PresenceOrdinary:
		return "ORDINARY"
	case PresenceEvacuating:
		return "EVACUATING"
	case PresenceSuspect:
		return "SUSPECT"
	}
	return fmt.Sprintf("Presence(%d)", int32(p))
}

// PreferredAddress is ActualLRPNetInfo.PreferredAddress (models/actual_lrp.proto, enum
// ActualLRPNetInfo.PreferredAddress).
type PreferredAddress int32

// PreferredAddress values.
const (
	PreferredAddressUnknown  PreferredAddress = 0
	PreferredAddressInstance PreferredAddress = 1
	PreferredAddressHost     PreferredAddress = 2
)

func (p PreferredAddress) String() string {
	switch p {
	case PreferredAddressUnknown:
		return "UNKNOWN"
	case PreferredAddressInstance:
		return "INSTANCE"
	case PreferredAddressHost:
		return "HOST"
	}
	return fmt.Sprintf("PreferredAddress(%d)", int32(p))
}

// PortMapping is models/actual_lrp.proto message PortMapping:
//
//	1 container_port uint32, 2 host_port uint32, 3 container_tls_proxy_port uint32,
//	4 host_tls_proxy_port uint32
type PortMapping struct {
	ContainerPort, HostPort, ContainerTLSProxyPort, HostTLSProxyPort uint32
}

// ActualLRP flattens models/actual_lrp.proto message ActualLRP:
//
//	1 actual_lrp_key ActualLRPKey {1 process_guid string, 2 index int32, 3 domain string}
//	2 actual_lrp_instance_key ActualLRPInstanceKey {1 instance_guid string, 2 cell_id string}
//	3 actual_lrp_net_info ActualLRPNetInfo {1 address string, 2 ports repeated PortMapping,
//	  3 instance_address string, 4 preferred_address enum PreferredAddress}
//	6 state string
//	10 presence enum Presence
//
// Skipped: 4 crash_count, 5 crash_reason, 7 placement_error, 8 since, 9 modification_tag,
// 11 actual_lrp_internal_routes, 12 metric_tags, 13 routable, 14 availability_zone.
type ActualLRP struct {
	ProcessGUID      string
	Index            int32
	Domain           string
	InstanceGUID     string
	CellID           string
	State            string
	Presence         Presence
	Address          string
	InstanceAddress  string
	PreferredAddress PreferredAddress
	Ports            []PortMapping
}

// DesiredLRP is the part of models/desired_lrp.proto message DesiredLRP the proxy reads:
//
//	1 process_guid string
//	15 routes ProtoRoutes {1 routes map<string, bytes>}
//	17 log_guid string
//	35 metric_tags map<string, MetricTagValue>
//
// Routes values are raw JSON (for example routes["diego-ssh"]). Every other field (domain,
// rootfs, instances, env, actions, ...) is skipped.
type DesiredLRP struct {
	ProcessGUID string
	// Instances is how many instances are desired (indexes 0..Instances-1).
	Instances int32
	Routes    map[string][]byte
	// LogGUID is the app's log stream (Cloud Controller sets the app guid).
	LogGUID string
	// MetricTags are the tags Diego puts on the app's logs and metrics.
	MetricTags map[string]MetricTagValue
}

// MetricTagDynamic is models/metric_tags.proto enum MetricTagValue.DynamicValue: which
// property of the running instance a tag takes.
type MetricTagDynamic int32

// MetricTagDynamic values.
const (
	MetricTagDynamicInvalid MetricTagDynamic = 0
	MetricTagIndex          MetricTagDynamic = 1
	MetricTagInstanceGUID   MetricTagDynamic = 2
)

// MetricTagValue is models/metric_tags.proto message MetricTagValue: 1 static string,
// 2 dynamic enum DynamicValue. BBS sets one of the two.
type MetricTagValue struct {
	Static  string
	Dynamic MetricTagDynamic
}

// Resolve is the tag's value for the instance at index with instanceGUID. ok is false for a
// tag that is neither static nor a known dynamic value.
func (v MetricTagValue) Resolve(index int32, instanceGUID string) (value string, ok bool) {
	switch {
	case v.Static != "":
		return v.Static, true
	case v.Dynamic == MetricTagIndex:
		return strconv.FormatInt(int64(index), 10), true
	case v.Dynamic == MetricTagInstanceGUID:
		return instanceGUID, true
	}
	return "", false
}

// ErrorType is models/error.proto enum Error.Type.
type ErrorType int32

// ErrorType values (models/error.proto; 1, 2, 10, 20, 22, 23 and 25 are reserved there).
const (
	UnknownError               ErrorType = 0
	InvalidRecord              ErrorType = 3
	InvalidRequest             ErrorType = 4
	InvalidResponse            ErrorType = 5
	InvalidProtobufMessage     ErrorType = 6
	InvalidJSON                ErrorType = 7
	FailedToOpenEnvelope       ErrorType = 8
	InvalidStateTransition     ErrorType = 9
	ResourceConflict           ErrorType = 11
	ResourceExists             ErrorType = 12
	ResourceNotFound           ErrorType = 13
	RouterError                ErrorType = 14
	ActualLRPCannotBeClaimed   ErrorType = 15
	ActualLRPCannotBeStarted   ErrorType = 16
	ActualLRPCannotBeCrashed   ErrorType = 17
	ActualLRPCannotBeFailed    ErrorType = 18
	ActualLRPCannotBeRemoved   ErrorType = 19
	ActualLRPCannotBeUnclaimed ErrorType = 21
	RunningOnDifferentCell     ErrorType = 24
	GUIDGeneration             ErrorType = 26
	Deserialize                ErrorType = 27
	Deadlock                   ErrorType = 28
	Unrecoverable              ErrorType = 29
	LockCollision              ErrorType = 30
	Timeout                    ErrorType = 31
)

var errorTypeNames = map[ErrorType]string{
	UnknownError: "UnknownError", InvalidRecord: "InvalidRecord", InvalidRequest: "InvalidRequest",
	InvalidResponse: "InvalidResponse", InvalidProtobufMessage: "InvalidProtobufMessage",
	InvalidJSON: "InvalidJSON", FailedToOpenEnvelope: "FailedToOpenEnvelope",
	InvalidStateTransition: "InvalidStateTransition", ResourceConflict: "ResourceConflict",
	ResourceExists: "ResourceExists", ResourceNotFound: "ResourceNotFound", RouterError: "RouterError",
	ActualLRPCannotBeClaimed: "ActualLRPCannotBeClaimed", ActualLRPCannotBeStarted: "ActualLRPCannotBeStarted",
	ActualLRPCannotBeCrashed: "ActualLRPCannotBeCrashed", ActualLRPCannotBeFailed: "ActualLRPCannotBeFailed",
	ActualLRPCannotBeRemoved: "ActualLRPCannotBeRemoved", ActualLRPCannotBeUnclaimed: "ActualLRPCannotBeUnclaimed",
	RunningOnDifferentCell: "RunningOnDifferentCell", GUIDGeneration: "GUIDGeneration",
	Deserialize: "Deserialize", Deadlock: "Deadlock", Unrecoverable: "Unrecoverable",
	LockCollision: "LockCollision", Timeout: "Timeout",
}

func (t ErrorType) String() string {
	if n, ok := errorTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("ErrorType(%d)", int32(t))
}

// Error is models/error.proto message Error: 1 type enum Error.Type, 2 message string.
// It is also the Go error the client returns when BBS answers with an error.
type Error struct {
	Type    ErrorType
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "BBS error " + e.Type.String()
	}
	return "BBS error " + e.Type.String() + ": " + e.Message
}

// Is makes errors.Is(err, &bbs.Error{Type: bbs.ResourceNotFound}) match on the type alone
// when the target has no message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Type == e.Type && (t.Message == "" || t.Message == e.Message)
}

// ErrResourceNotFound matches (errors.Is) any BBS ResourceNotFound error.
var ErrResourceNotFound = &Error{Type: ResourceNotFound}

// ActualLRPsRequest is models/actual_lrp_requests.proto message ActualLRPsRequest:
//
//	1 domain string, 2 cell_id string, 3 process_guid string, 4 optional int32 index
//
// A nil Index means "every index" (the field is then absent on the wire).
type ActualLRPsRequest struct {
	Domain, CellID, ProcessGUID string
	Index                       *int32
}

// ActualLRPsResponse is models/actual_lrp_requests.proto message ActualLRPsResponse:
//
//	1 error Error, 2 actual_lrps repeated ActualLRP
type ActualLRPsResponse struct {
	Error      *Error
	ActualLRPs []ActualLRP
}

// DesiredLRPByProcessGUIDRequest is models/desired_lrp_requests.proto message
// DesiredLRPByProcessGuidRequest: 1 process_guid string.
type DesiredLRPByProcessGUIDRequest struct {
	ProcessGUID string
}

// DesiredLRPResponse is models/desired_lrp_requests.proto message DesiredLRPResponse:
//
//	1 error Error, 2 desired_lrp DesiredLRP
type DesiredLRPResponse struct {
	Error      *Error
	DesiredLRP *DesiredLRP
}

// ---- encoding ----

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// int32s are encoded sign-extended to 64 bits, as protobuf requires.
func i32(v int32) uint64 { return uint64(int64(v)) }

// MarshalProto encodes the port mapping.
func (p PortMapping) MarshalProto() []byte {
	var b []byte
	b = appendVarint(b, 1, uint64(p.ContainerPort))
	b = appendVarint(b, 2, uint64(p.HostPort))
	b = appendVarint(b, 3, uint64(p.ContainerTLSProxyPort))
	b = appendVarint(b, 4, uint64(p.HostTLSProxyPort))
	return b
}

// MarshalProto encodes the ActualLRP (only the fields this package knows).
func (a ActualLRP) MarshalProto() []byte {
	var key, inst, net, b []byte
	key = appendString(key, 1, a.ProcessGUID)
	key = appendVarint(key, 2, i32(a.Index))
	key = appendString(key, 3, a.Domain)
	inst = appendString(inst, 1, a.InstanceGUID)
	inst = appendString(inst, 2, a.CellID)
	net = appendString(net, 1, a.Address)
	for _, p := range a.Ports {
		net = appendBytesField(net, 2, p.MarshalProto())
	}
	net = appendString(net, 3, a.InstanceAddress)
	net = appendVarint(net, 4, i32(int32(a.PreferredAddress)))
	b = appendBytesField(b, 1, key)
	b = appendBytesField(b, 2, inst)
	b = appendBytesField(b, 3, net)
	b = appendString(b, 6, a.State)
	b = appendVarint(b, 10, i32(int32(a.Presence)))
	return b
}

// MarshalProto encodes the DesiredLRP (process_guid and routes, keys in sorted order).
func (d DesiredLRP) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, d.ProcessGUID)
	b = appendVarint(b, 4, i32(d.Instances))
	if d.Routes != nil {
		keys := make([]string, 0, len(d.Routes))
		for k := range d.Routes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var routes []byte
		for _, k := range keys {
			var entry []byte
			entry = appendString(entry, 1, k)
			entry = appendBytesField(entry, 2, d.Routes[k])
			routes = appendBytesField(routes, 1, entry)
		}
		b = appendBytesField(b, 15, routes)
	}
	b = appendString(b, 17, d.LogGUID)
	tagKeys := make([]string, 0, len(d.MetricTags))
	for k := range d.MetricTags {
		tagKeys = append(tagKeys, k)
	}
	sort.Strings(tagKeys)
	for _, k := range tagKeys {
		v := d.MetricTags[k]
		var val, entry []byte
		val = appendString(val, 1, v.Static)
		val = appendVarint(val, 2, i32(int32(v.Dynamic)))
		entry = appendString(entry, 1, k)
		entry = appendBytesField(entry, 2, val)
		b = appendBytesField(b, 35, entry)
	}
	return b
}

// MarshalProto encodes the error.
func (e *Error) MarshalProto() []byte {
	var b []byte
	b = appendVarint(b, 1, i32(int32(e.Type)))
	b = appendString(b, 2, e.Message)
	return b
}

// MarshalProto encodes the request.
func (r ActualLRPsRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, r.Domain)
	b = appendString(b, 2, r.CellID)
	b = appendString(b, 3, r.ProcessGUID)
	if r.Index != nil { // proto3 optional: present even when zero
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, i32(*r.Index))
	}
	return b
}

// MarshalProto encodes the response.
func (r ActualLRPsResponse) MarshalProto() []byte {
	var b []byte
	if r.Error != nil {
		b = appendBytesField(b, 1, r.Error.MarshalProto())
	}
	for _, a := range r.ActualLRPs {
		b = appendBytesField(b, 2, a.MarshalProto())
	}
	return b
}

// MarshalProto encodes the request.
func (r DesiredLRPByProcessGUIDRequest) MarshalProto() []byte {
	return appendString(nil, 1, r.ProcessGUID)
}

// MarshalProto encodes the response.
func (r DesiredLRPResponse) MarshalProto() []byte {
	var b []byte
	if r.Error != nil {
		b = appendBytesField(b, 1, r.Error.MarshalProto())
	}
	if r.DesiredLRP != nil {
		b = appendBytesField(b, 2, r.DesiredLRP.MarshalProto())
	}
	return b
}

// ---- decoding ----

// field is one decoded wire field: v holds varints and fixed values, raw holds bytes fields.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	raw []byte
}

// walk calls fn for every field in b, skipping groups (which fn never sees).
func walk(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.raw, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// A known field arriving with an unexpected wire type is treated as unknown and skipped, as
// protobuf parsers do.
func (f field) isVarint() bool { return f.typ == protowire.VarintType }
func (f field) isBytes() bool  { return f.typ == protowire.BytesType }

func decodePortMapping(b []byte) (PortMapping, error) {
	var p PortMapping
	err := walk(b, func(f field) error {
		if !f.isVarint() {
			return nil
		}
		switch f.num {
		case 1:
			p.ContainerPort = uint32(f.v)
		case 2:
			p.HostPort = uint32(f.v)
		case 3:
			p.ContainerTLSProxyPort = uint32(f.v)
		case 4:
			p.HostTLSProxyPort = uint32(f.v)
		}
		return nil
	})
	return p, err
}

func decodeActualLRP(b []byte) (ActualLRP, error) {
	var a ActualLRP
	err := walk(b, func(f field) error {
		switch {
		case f.num == 1 && f.isBytes(): // actual_lrp_key
			return walk(f.raw, func(g field) error {
				switch {
				case g.num == 1 && g.isBytes():
					a.ProcessGUID = string(g.raw)
				case g.num == 2 && g.isVarint():
					a.Index = int32(g.v)
				case g.num == 3 && g.isBytes():
					a.Domain = string(g.raw)
				}
				return nil
			})
		case f.num == 2 && f.isBytes(): // actual_lrp_instance_key
			return walk(f.raw, func(g field) error {
				switch {
				case g.num == 1 && g.isBytes():
					a.InstanceGUID = string(g.raw)
				case g.num == 2 && g.isBytes():
					a.CellID = string(g.raw)
				}
				return nil
			})
		case f.num == 3 && f.isBytes(): // actual_lrp_net_info
			return walk(f.raw, func(g field) error {
				switch {
				case g.num == 1 && g.isBytes():
					a.Address = string(g.raw)
				case g.num == 2 && g.isBytes():
					p, err := decodePortMapping(g.raw)
					if err != nil {
						return fmt.Errorf("ports: %w", err)
					}
					a.Ports = append(a.Ports, p)
				case g.num == 3 && g.isBytes():
					a.InstanceAddress = string(g.raw)
				case g.num == 4 && g.isVarint():
					a.PreferredAddress = PreferredAddress(int32(g.v))
				}
				return nil
			})
		case f.num == 6 && f.isBytes():
			a.State = string(f.raw)
		case f.num == 10 && f.isVarint():
			a.Presence = Presence(int32(f.v))
		}
		return nil
	})
	return a, err
}

func decodeDesiredLRP(b []byte) (*DesiredLRP, error) {
	d := &DesiredLRP{}
	err := walk(b, func(f field) error {
		switch {
		case f.num == 1 && f.isBytes():
			d.ProcessGUID = string(f.raw)
		case f.num == 4 && f.typ == protowire.VarintType:
			d.Instances = int32(f.v)
		case f.num == 15 && f.isBytes(): // ProtoRoutes
			return walk(f.raw, func(g field) error {
				if g.num != 1 || !g.isBytes() {
					return nil
				}
				var key string
				var val []byte
				if err := walk(g.raw, func(h field) error { // map entry
					switch {
					case h.num == 1 && h.isBytes():
						key = string(h.raw)
					case h.num == 2 && h.isBytes():
						val = append([]byte(nil), h.raw...)
					}
					return nil
				}); err != nil {
					return fmt.Errorf("routes entry: %w", err)
				}
				if d.Routes == nil {
					d.Routes = map[string][]byte{}
				}
				if val == nil {
					val = []byte{}
				}
				d.Routes[key] = val
				return nil
			})
		case f.num == 17 && f.isBytes():
			d.LogGUID = string(f.raw)
		case f.num == 35 && f.isBytes(): // one metric_tags map entry
			key, val, err := decodeMetricTag(f.raw)
			if err != nil {
				return fmt.Errorf("metric_tags entry: %w", err)
			}
			if d.MetricTags == nil {
				d.MetricTags = map[string]MetricTagValue{}
			}
			d.MetricTags[key] = val
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// decodeMetricTag decodes one map<string, MetricTagValue> entry: 1 key, 2 value
// {1 static string, 2 dynamic enum}.
func decodeMetricTag(b []byte) (string, MetricTagValue, error) {
	var key string
	var val MetricTagValue
	err := walk(b, func(g field) error {
		switch {
		case g.num == 1 && g.isBytes():
			key = string(g.raw)
		case g.num == 2 && g.isBytes():
			return walk(g.raw, func(h field) error {
				switch {
				case h.num == 1 && h.isBytes():
					val.Static = string(h.raw)
				case h.num == 2 && h.isVarint():
					val.Dynamic = MetricTagDynamic(int32(h.v))
				}
				return nil
			})
		}
		return nil
	})
	return key, val, err
}

func decodeError(b []byte) (*Error, error) {
	e := &Error{}
	err := walk(b, func(f field) error {
		switch {
		case f.num == 1 && f.isVarint():
			e.Type = ErrorType(int32(f.v))
		case f.num == 2 && f.isBytes():
			e.Message = string(f.raw)
		}
		return nil
	})
	return e, err
}

// UnmarshalActualLRPsRequest decodes an ActualLRPsRequest.
func UnmarshalActualLRPsRequest(b []byte) (ActualLRPsRequest, error) {
	var r ActualLRPsRequest
	err := walk(b, func(f field) error {
		switch {
		case f.num == 1 && f.isBytes():
			r.Domain = string(f.raw)
		case f.num == 2 && f.isBytes():
			r.CellID = string(f.raw)
		case f.num == 3 && f.isBytes():
			r.ProcessGUID = string(f.raw)
		case f.num == 4 && f.isVarint():
			i := int32(f.v)
			r.Index = &i
		}
		return nil
	})
	if err != nil {
		return ActualLRPsRequest{}, fmt.Errorf("decoding ActualLRPsRequest: %w", err)
	}
	return r, nil
}

// UnmarshalActualLRPsResponse decodes an ActualLRPsResponse.
func UnmarshalActualLRPsResponse(b []byte) (ActualLRPsResponse, error) {
	var r ActualLRPsResponse
	err := walk(b, func(f field) error {
		switch {
		case f.num == 1 && f.isBytes():
			e, err := decodeError(f.raw)
			if err != nil {
				return fmt.Errorf("error: %w", err)
			}
			r.Error = e
		case f.num == 2 && f.isBytes():
			a, err := decodeActualLRP(f.raw)
			if err != nil {
				return fmt.Errorf("actual_lrps: %w", err)
			}
			r.ActualLRPs = append(r.ActualLRPs, a)
		}
		return nil
	})
	if err != nil {
		return ActualLRPsResponse{}, fmt.Errorf("decoding ActualLRPsResponse: %w", err)
	}
	return r, nil
}

// UnmarshalDesiredLRPByProcessGUIDRequest decodes a DesiredLRPByProcessGuidRequest.
func UnmarshalDesiredLRPByProcessGUIDRequest(b []byte) (DesiredLRPByProcessGUIDRequest, error) {
	var r DesiredLRPByProcessGUIDRequest
	err := walk(b, func(f field) error {
		if f.num == 1 && f.isBytes() {
			r.ProcessGUID = string(f.raw)
		}
		return nil
	})
	if err != nil {
		return DesiredLRPByProcessGUIDRequest{}, fmt.Errorf("decoding DesiredLRPByProcessGuidRequest: %w", err)
	}
	return r, nil
}

// UnmarshalDesiredLRPResponse decodes a DesiredLRPResponse.
func UnmarshalDesiredLRPResponse(b []byte) (DesiredLRPResponse, error) {
	var r DesiredLRPResponse
	err := walk(b, func(f field) error {
		switch {
		case f.num == 1 && f.isBytes():
			e, err := decodeError(f.raw)
			if err != nil {
				return fmt.Errorf("error: %w", err)
			}
			r.Error = e
		case f.num == 2 && f.isBytes():
			d, err := decodeDesiredLRP(f.raw)
			if err != nil {
				return fmt.Errorf("desired_lrp: %w", err)
			}
			r.DesiredLRP = d
		}
		return nil
	})
	if err != nil {
		return DesiredLRPResponse{}, fmt.Errorf("decoding DesiredLRPResponse: %w", err)
	}
	return r, nil
}

// UnmarshalError decodes a bare Error message.
func UnmarshalError(b []byte) (*Error, error) {
	e, err := decodeError(b)
	if err != nil {
		return nil, fmt.Errorf("decoding Error: %w", err)
	}
	return e, nil
}
