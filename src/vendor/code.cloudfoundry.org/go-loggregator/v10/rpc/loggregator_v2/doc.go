//go:generate ./generate.sh
package loggregator_v2
