package ingressstub_test

import (
	"testing"
	"time"

	loggregator "code.cloudfoundry.org/go-loggregator/v10"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/ingressstub"
)

// client is a go-loggregator ingress client with a certificate from ca.
func client(t *testing.T, ca *certs.CA, serverCA *certs.CA, addr string) *loggregator.IngressClient {
	t.Helper()
	dir := t.TempDir()
	kp, err := ca.Issue("metron", "metron")
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := kp.WriteFiles(dir, "client")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := serverCA.WriteFile(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := loggregator.NewIngressTLSConfig(caFile, crt, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := loggregator.NewIngressClient(tlsCfg, loggregator.WithAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRecordsOnlyMutuallyAuthenticatedClientsAndSurvivesRestart(t *testing.T) {
	ca, err := certs.NewCA("agent CA")
	if err != nil {
		t.Fatal(err)
	}
	metron, err := ca.Issue("metron", "metron")
	if err != nil {
		t.Fatal(err)
	}
	s := ingressstub.New("127.0.0.1:0", certs.ServerTLS(metron, ca.Pool()))
	defer s.Close()

	good := client(t, ca, ca, s.Addr())
	good.EmitLog("one", loggregator.WithAppInfo("app", "SSH", "0"), loggregator.WithStdout())
	good.EmitGauge(loggregator.WithGaugeValue("ssh-connections", 3, "Metric"))
	waitFor(t, "two envelopes", func() bool { return len(s.Envelopes()) == 2 })
	if logs := s.Logs("app"); len(logs) != 1 || string(logs[0].GetLog().GetPayload()) != "one" {
		t.Fatalf("Logs(app) = %v", logs)
	}
	if g := s.Gauges("ssh-connections"); len(g) != 1 || g[0] != 3 {
		t.Fatalf("Gauges = %v", g)
	}

	other, err := certs.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	stranger := client(t, other, ca, s.Addr())
	stranger.EmitLog("stranger", loggregator.WithAppInfo("app", "SSH", "0"))
	time.Sleep(500 * time.Millisecond)
	if n := len(s.Logs("app")); n != 1 {
		t.Fatalf("a client certificate from another CA got %d envelopes recorded", n-1)
	}

	port := s.Port()
	s.Stop()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if s.Port() != port {
		t.Fatalf("restarted on port %d, not %d", s.Port(), port)
	}
	s.Reset()
	waitFor(t, "a line after the restart", func() bool {
		good.EmitLog("again", loggregator.WithAppInfo("app", "SSH", "0"))
		time.Sleep(100 * time.Millisecond)
		return len(s.Logs("app")) > 0
	})
}
