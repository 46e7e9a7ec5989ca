package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	loggregator "code.cloudfoundry.org/go-loggregator/v10"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/ingressstub"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

func TestAdminEndpointNeedsTheToken(t *testing.T) {
	uaa := uaastub.New("ssh-proxy", "secret", nil)
	defer uaa.Close()
	srv := httptest.NewServer(adminHandler("tok", uaa, nil, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	post := func(auth string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/ssh-code", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, bad := range []string{"", "Bearer nope", "tok"} {
		if code, _ := post(bad); code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", bad, code)
		}
	}
	code, body := post("Bearer tok")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	c := strings.TrimSpace(body)
	if c == "" {
		t.Fatal("empty code")
	}
	if code, again := post("Bearer tok"); code != http.StatusOK || strings.TrimSpace(again) == c {
		t.Fatalf("second code: status %d, same code %v", code, strings.TrimSpace(again) == c)
	}
}

func TestAdminEndpointShowsAppLogLinesAsCfLogsWould(t *testing.T) {
	ca, err := certs.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	metron, err := ca.Issue("metron", "metron")
	if err != nil {
		t.Fatal(err)
	}
	ingress := ingressstub.New("127.0.0.1:0", certs.ServerTLS(metron, ca.Pool()))
	defer ingress.Close()
	srv := httptest.NewServer(adminHandler("tok", nil, ingress, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	dir := t.TempDir()
	caFile, err := ca.WriteFile(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := metron.WriteFiles(dir, "client")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := loggregator.NewIngressTLSConfig(caFile, crt, key)
	if err != nil {
		t.Fatal(err)
	}
	client, err := loggregator.NewIngressClient(tlsCfg, loggregator.WithAddr(ingress.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	client.EmitLog("Successful remote access by 10.0.0.1:4000", loggregator.WithAppInfo("app-1", "SSH", "0"), loggregator.WithStdout())
	client.EmitLog("other app", loggregator.WithAppInfo("app-2", "APP/PROC/WEB", "0"), loggregator.WithStdout())
	if err := client.CloseSend(); err != nil {
		t.Fatal(err)
	}

	get := func(auth string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/logs?source_id=app-1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", auth)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("Bearer nope"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d, want 401", code)
	}
	code, body := get("Bearer tok")
	want := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d[+-]\d{4} \[SSH/0\] OUT Successful remote access by 10\.0\.0\.1:4000\n$`)
	if code != http.StatusOK || !want.MatchString(body) {
		t.Errorf("GET /v1/logs: status %d, body %q", code, body)
	}
}

func TestHelpers(t *testing.T) {
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(newGUID()) {
		t.Errorf("newGUID() = %q", newGUID())
	}
	if newGUID() == newGUID() {
		t.Error("newGUID repeats")
	}
	host, port, err := splitURL("https://127.0.0.1:8443")
	if err != nil || host != "https://127.0.0.1" || port != 8443 {
		t.Errorf("splitURL = %q %d %v", host, port, err)
	}
	if _, _, err := splitURL("https://127.0.0.1"); err == nil {
		t.Error("splitURL accepted a URL without port")
	}
	if _, err := parseServeFlags([]string{"-sshd-address", "nohost"}); err == nil ||
		!strings.Contains(err.Error(), "-dir: must be set") || !strings.Contains(err.Error(), "-sshd-address:") ||
		!strings.Contains(err.Error(), "-sshd-host-key-fingerprint:") {
		t.Errorf("parseServeFlags problems = %v", err)
	}
}
