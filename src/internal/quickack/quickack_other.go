//go:build !linux

package quickack

func setQuickAck(int) error { return nil }
