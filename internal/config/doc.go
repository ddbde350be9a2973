// Package config defines Spelt's single configuration struct and loads it
// from a TOML file plus SPELT_* environment variables.
//
// Role: cmd/spelt (the composition root) calls [Load] once at start-up and
// passes the values each component needs down by hand; no other package
// reads files or the environment for configuration, and there is no package
// global holding the loaded [Config].
//
// Precedence, lowest to highest: [Defaults], the TOML file, environment
// variables. Every key `key` in section `[section]` can be overridden by
// SPELT_SECTION_KEY (top-level keys by SPELT_KEY); the mapping is derived by
// reflection from the struct's toml tags, so a new field gets its override
// for free. config/spelt.example.toml documents every key with its default
// and is checked against this package by its tests.
//
// Imports: the standard library and github.com/BurntSushi/toml only; no
// other Spelt package.
package config
