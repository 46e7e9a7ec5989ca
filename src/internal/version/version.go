// Package version holds the release version stamped into binaries at link time
// (-ldflags "-X github.com/app-ssh/app-ssh/internal/version.Version=...").
package version

// Version is "dev" unless the build stamps it.
var Version = "dev"
