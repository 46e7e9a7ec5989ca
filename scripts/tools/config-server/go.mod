module github.com/app-ssh/app-ssh/scripts/tools/config-server

go 1.26

replace github.com/cloudfoundry/bosh-utils => github.com/cloudfoundry/bosh-utils v0.0.555

tool github.com/cloudfoundry/config-server

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/BurntSushi/migration v0.0.0-20140125045755-c45b897f1335 // indirect
	github.com/cloudfoundry/bosh-utils v0.0.622 // indirect
	github.com/cloudfoundry/config-server v0.1.285 // indirect
	github.com/dgrijalva/jwt-go v3.2.0+incompatible // indirect
	github.com/go-sql-driver/mysql v1.10.0 // indirect
	github.com/lib/pq v1.12.3 // indirect
	golang.org/x/crypto v0.53.0 // indirect
	golang.org/x/sys v0.46.0 // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
)
