package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

func TestAdminEndpointNeedsTheToken(t *testing.T) {
	uaa := uaastub.New("ssh-proxy", "secret", nil)
	defer uaa.Close()
	srv := httptest.NewServer(adminHandler("tok", uaa, slog.New(slog.DiscardHandler)))
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
