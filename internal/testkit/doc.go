// Package testkit gives tests a real PostgreSQL database of their own.
//
// A package that uses it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
//
// and each test asks for a fresh, migrated database:
//
//	url := testkit.DB(t, migrations.Apply)
//
// The first DB call of a test binary starts one throwaway cluster
// (internal/pgembed, in a temporary directory, durability off), or uses the
// server at SPELT_TEST_DATABASE_URL when that is set; that URL's user must be
// allowed to CREATE DATABASE. The migrate function runs once, on a template
// database; every DB call then clones the template with CREATE DATABASE ...
// TEMPLATE (tens of milliseconds), and drops the clone in t.Cleanup. Main
// stops the cluster and deletes its directory (or drops the templates on the
// external server) once the tests have run. A test binary that dies before
// Main returns (a -timeout panic, a kill) leaves its cluster behind; the next
// test binary to start a cluster deletes the directory, and the orphaned
// server then shuts itself down within a minute.
//
// A test never skips for want of a database: if no server can be had, the
// test fails with the reason.
//
// Allowed imports: internal/pgembed, the standard library and
// github.com/jackc/pgx/v5.
package testkit
