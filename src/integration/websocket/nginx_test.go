package websocket_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"text/template"

	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

// nginxConf terminates TLS like gorouter (its own certificate for the route's host name),
// passes the WebSocket upgrade on, and re-encrypts to the backend, verifying the backend's
// certificate against the CA and the name route_registrar's server_cert_domain_san gives.
var nginxConf = template.Must(template.New("nginx").Parse(`
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/body;
  proxy_temp_path {{.Dir}}/proxy;
  fastcgi_temp_path {{.Dir}}/fastcgi;
  uwsgi_temp_path {{.Dir}}/uwsgi;
  scgi_temp_path {{.Dir}}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:{{.Port}} ssl;
    server_name {{.ServerName}};
    ssl_certificate {{.Cert}};
    ssl_certificate_key {{.Key}};
    location / {
      proxy_pass https://{{.Backend}};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate {{.CA}};
      proxy_ssl_name {{.ServerName}};
      proxy_ssl_server_name on;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
`))

// startNginx runs nginx in front of the rig's listener and returns its wss:// URL.
func (r *rig) startNginx() string {
	return startNginx(r.dir, r.ca, r.caFile, r.l.Addr().String())
}

// startNginx runs nginx in front of backend (a TLS WebSocket listener whose certificate ca
// issued for serverName) and returns its wss:// URL.
func startNginx(dir string, ca *certs.CA, caFile, backend string) string {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	Expect(nginx).To(BeAnExistingFile(), "nginx is required (Debian: nginx)")
	dir = filepath.Join(dir, "nginx")
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	kp, err := ca.Issue("router", serverName, "127.0.0.1")
	Expect(err).NotTo(HaveOccurred())
	cert, key, err := kp.WriteFiles(dir, "router")
	Expect(err).NotTo(HaveOccurred())
	port := freePort()
	conf := filepath.Join(dir, "nginx.conf")
	f, err := os.Create(conf)
	Expect(err).NotTo(HaveOccurred())
	Expect(nginxConf.Execute(f, map[string]string{
		"Dir": dir, "Port": strconv.Itoa(port), "ServerName": serverName,
		"Cert": cert, "Key": key, "CA": caFile, "Backend": backend,
	})).To(Succeed())
	Expect(f.Close()).To(Succeed())
	cmd := exec.Command(nginx, "-p", dir, "-c", conf, "-e", "stderr", "-g", "daemon off;")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	procs.Start("nginx", cmd).WaitListening(addr)
	return "wss://" + addr + "/"
}
