// Package archtest holds the test that enforces the package boundaries of
// ../shared/ARCHITECTURE.md: which project packages each layer may import.
package archtest
