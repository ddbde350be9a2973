package pgembed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultPort is the port used when Options.Port is 0. The server listens on
// no TCP port at all; the number only names the socket file
// (.s.PGSQL.54329), and differs from 5432 so that a psql pointed at the
// socket directory never mistakes the cluster for a system-wide server.
const DefaultPort = 54329

// superuser is the role initdb creates and every URL connects as.
const superuser = "spelt"

// maxSocketPath is the longest Unix socket path PostgreSQL accepts:
// sizeof(sockaddr_un.sun_path) is 108 on Linux, including the trailing NUL.
const maxSocketPath = 107

// binGlob is where Debian and Ubuntu install the server binaries, one
// directory per major version, none of them on PATH.
const binGlob = "/usr/lib/postgresql/*/bin"

// runAsName is the system user the server runs as when the process is root.
const runAsName = "postgres"

var (
	// ErrBinariesNotFound reports that the PostgreSQL server binaries are not
	// installed.
	ErrBinariesNotFound = errors.New("postgresql server binaries (initdb, pg_ctl, postgres) not found on PATH or under " +
		binGlob + ": install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql) " +
		"or set [database] url / SPELT_DATABASE_URL")

	// ErrInUse reports that another live process owns the cluster.
	ErrInUse = errors.New("cluster is in use by another process")
)

// Options configures Start.
type Options struct {
	// DataDir is the cluster directory, e.g. <data_dir>/postgres. It is
	// created (and initialised with initdb) when it holds no cluster yet.
	// The server log goes to DataDir+".log", the lock to DataDir+".lock".
	DataDir string
	// Logger receives progress and warnings; nil discards them.
	Logger *slog.Logger
	// Port names the socket file; 0 means DefaultPort. No TCP port is opened.
	Port int
	// Fast trades durability for speed (fsync, synchronous_commit and
	// full_page_writes off, initdb --no-sync): for throwaway test clusters
	// only, since a crash can corrupt the cluster.
	Fast bool
}

// Cluster is a running server started by Start. Its methods are safe for
// concurrent use.
type Cluster struct {
	logger    *slog.Logger
	bin       binaries
	dataDir   string
	logFile   string
	socketDir string
	// privateSocketDir is set when socketDir is a temporary directory that
	// Stop removes, rather than DataDir/run.
	privateSocketDir bool
	port             int
	fast             bool
	runAs            *runAs
	env              []string

	mu   sync.Mutex
	lock *os.File // held from Start to Stop; nil once stopped
}

// binaries are the server programs of one PostgreSQL installation.
type binaries struct {
	initdb, pgCtl, postgres string
	// version is the major version ("15", or "9.6" before PostgreSQL 10),
	// comparable with a cluster's PG_VERSION file.
	version string
}

// runAs is the unprivileged user the server runs as when we are root.
type runAs struct {
	name string
	uid  uint32
	gid  uint32
	// groups are all the user's groups; the child gets exactly these, as
	// after a login, rather than root's supplementary groups.
	groups []uint32
}

// Start starts the cluster in opts.DataDir, creating it first if needed, and
// returns once the server accepts connections. The caller must call Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	begin := time.Now()
	if opts.DataDir == "" {
		return nil, errors.New("start postgres: empty data directory")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	// pg_ctl pastes the data directory and log file into a /bin/sh command
	// line inside double quotes, where these characters would be expanded.
	if strings.ContainsAny(dataDir, "\"$`\\\n") {
		return nil, fmt.Errorf("start postgres: data directory %q contains a shell metacharacter", dataDir)
	}
	c := &Cluster{
		logger:  opts.Logger,
		dataDir: dataDir,
		logFile: dataDir + ".log",
		port:    opts.Port,
		fast:    opts.Fast,
		env:     childEnv(),
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.port == 0 {
		c.port = DefaultPort
	}
	if c.port < 1 || c.port > 65535 {
		return nil, fmt.Errorf("start postgres: port %d out of range", c.port)
	}

	if err := os.MkdirAll(filepath.Dir(dataDir), 0o700); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c.lock, err = lockCluster(dataDir + ".lock")
	if err != nil {
		return nil, fmt.Errorf("start postgres in %s: %w", dataDir, err)
	}
	if err := c.start(ctx); err != nil {
		c.release()
		return nil, fmt.Errorf("start postgres in %s: %w", dataDir, err)
	}
	c.logger.InfoContext(ctx, "postgres started",
		"data_dir", dataDir, "socket_dir", c.socketDir, "version", c.bin.version,
		"duration", time.Since(begin))
	return c, nil
}

// start does the work of Start once the cluster lock is held.
func (c *Cluster) start(ctx context.Context) error {
	clusterVersion, err := readVersionFile(filepath.Join(c.dataDir, "PG_VERSION"))
	if err != nil {
		return err
	}
	c.bin, err = findBinaries(ctx, os.Getenv("PATH"), binGlob, clusterVersion)
	if err != nil {
		return err
	}

	if os.Geteuid() == 0 {
		if c.runAs, err = ensureRunAs(ctx, c.logger); err != nil {
			return err
		}
		if err := c.prepareForRunAs(ctx); err != nil {
			return err
		}
	}

	// We hold the lock, so a live server here was left by an owner that
	// died without stopping it (pg_ctl detaches the server into its own
	// session, so it survives a kill -9 of its parent). Its settings may
	// differ from ours, so restart it rather than adopt it.
	if clusterVersion != "" {
		running, err := c.leftoverServer(ctx)
		if err != nil {
			return err
		}
		if running {
			c.logger.WarnContext(ctx, "stopping postgres left running by a previous process", "data_dir", c.dataDir)
			if err := c.pgCtl(ctx, "stop", "-m", "fast", "-w"); err != nil {
				return fmt.Errorf("stop leftover server: %w", err)
			}
		}
	}

	if clusterVersion == "" {
		if err := c.initdb(ctx); err != nil {
			return err
		}
	}
	if err := c.makeSocketDir(ctx); err != nil {
		return err
	}

	args := []string{
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=",
		// Double quotes keep a comma or space in the path from splitting
		// the list; PostgreSQL's list syntax escapes '"' by doubling it.
		"-c", `unix_socket_directories="` + strings.ReplaceAll(c.socketDir, `"`, `""`) + `"`,
		"-c", "max_connections=200",
	}
	if c.fast {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	// -w waits until the server accepts connections; it also copes with a
	// stale postmaster.pid left by a crash. The -o string is run by /bin/sh,
	// hence the quoting.
	err = c.pgCtl(ctx, "start", "-w", "-t", "60", "-l", c.logFile, "-o", shellJoin(args))
	if err != nil {
		// A start cut short (timeout, cancelled ctx) may leave a server
		// coming up behind us; take it down before giving up the lock.
		_ = c.pgCtl(context.WithoutCancel(ctx), "stop", "-m", "immediate", "-w")
		return fmt.Errorf("%w%s", err, tailOf(c.logFile))
	}
	return nil
}

// prepareForRunAs gives the run-as user what it needs to reach and own the
// cluster: ownership of the cluster directory and the log file, and search
// permission on every directory above them.
func (c *Cluster) prepareForRunAs(ctx context.Context) error {
	// initdb and the server refuse a data directory owned by someone else.
	// A cluster created earlier by a non-root run is handed over whole.
	fi, err := os.Stat(c.dataDir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != c.runAs.uid {
		if err := chownTree(c.dataDir, c.runAs); err != nil {
			return err
		}
	}
	// pg_ctl appends to the log as the run-as user, who may not be allowed
	// to create files in the parent directory.
	f, err := os.OpenFile(c.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Lchown(c.logFile, int(c.runAs.uid), int(c.runAs.gid)); err != nil {
		return err
	}
	return ensureSearchable(ctx, c.logger, filepath.Dir(c.dataDir), c.runAs)
}

// makeSocketDir picks and creates the directory holding the server's socket.
// DataDir/run is preferred; a path too long for a Unix socket falls back to
// a private directory under os.TempDir().
func (c *Cluster) makeSocketDir(ctx context.Context) error {
	socketFile := "/.s.PGSQL." + strconv.Itoa(c.port)
	dir := filepath.Join(c.dataDir, "run")
	if len(dir)+len(socketFile) > maxSocketPath {
		tmp, err := os.MkdirTemp("", "spelt-pg-")
		if err != nil {
			return err
		}
		if len(tmp)+len(socketFile) > maxSocketPath {
			_ = os.Remove(tmp)
			return fmt.Errorf("socket path %s%s is longer than %d bytes: use a shorter data directory or TMPDIR",
				tmp, socketFile, maxSocketPath)
		}
		dir = tmp
		c.privateSocketDir = true
	} else if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	c.socketDir = dir
	// The directory's mode is what keeps other users off the trust-auth
	// socket, so enforce it even on a directory left by an earlier run.
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if c.runAs != nil {
		if err := os.Lchown(dir, int(c.runAs.uid), int(c.runAs.gid)); err != nil {
			return err
		}
		if c.privateSocketDir {
			return ensureSearchable(ctx, c.logger, filepath.Dir(dir), c.runAs)
		}
	}
	return nil
}

// initdb creates a new cluster in the (empty) data directory.
func (c *Cluster) initdb(ctx context.Context) error {
	begin := time.Now()
	// Trust without password is safe because the server listens only on a
	// socket in a 0700 directory (see makeSocketDir).
	args := []string{"-D", c.dataDir, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C"}
	if c.fast {
		args = append(args, "--no-sync")
	}
	out, err := c.command(ctx, c.bin.initdb, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, bytes.TrimSpace(out))
	}
	c.logger.InfoContext(ctx, "postgres cluster created", "data_dir", c.dataDir, "duration", time.Since(begin))
	return nil
}

// leftoverServer reports whether the server recorded in the data
// directory's postmaster.pid is still running, and removes the file when it
// is stale.
//
// pg_ctl and the server only check that the recorded pid is alive. After a
// reboot or a container restart that pid often belongs to an unrelated
// process (pids are small and reused), and then pg_ctl status would say
// "running", pg_ctl stop would signal that process, and the server would
// refuse to start ("lock file already exists"). The server keeps its working
// directory in the data directory, which tells it apart.
func (c *Cluster) leftoverServer(ctx context.Context) (bool, error) {
	pidFile := filepath.Join(c.dataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := os.Stat("/proc/self/cwd"); err != nil {
		return c.running(ctx) // no procfs: trust pg_ctl
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err == nil && pid > 0 {
		cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
		if errors.Is(err, fs.ErrPermission) {
			return c.running(ctx) // someone else's process: let pg_ctl judge
		}
		if err == nil {
			dataDir, derr := filepath.EvalSymlinks(c.dataDir)
			if derr == nil && cwd == dataDir {
				return true, nil
			}
		}
	}
	c.logger.InfoContext(ctx, "removing stale postmaster.pid", "data_dir", c.dataDir, "pid", pid)
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return false, nil
}

// running reports whether a server is running on the data directory, as
// pg_ctl status sees it.
func (c *Cluster) running(ctx context.Context) (bool, error) {
	out, err := c.command(ctx, c.bin.pgCtl, "status", "-D", c.dataDir).CombinedOutput()
	if err == nil {
		return true, nil
	}
	// pg_ctl status exits 3 when no server is running.
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.ExitCode() == 3 {
		return false, nil
	}
	return false, fmt.Errorf("pg_ctl status: %w: %s", err, bytes.TrimSpace(out))
}

// pgCtl runs pg_ctl with the given action and arguments on the data directory.
func (c *Cluster) pgCtl(ctx context.Context, action string, args ...string) error {
	args = append([]string{action, "-D", c.dataDir, "-s"}, args...)
	// With -l the server's output goes to the log file, so the server does
	// not inherit the pipe and CombinedOutput returns when pg_ctl exits.
	out, err := c.command(ctx, c.bin.pgCtl, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", action, err, bytes.TrimSpace(out))
	}
	return nil
}

// command prepares a server program to run as the cluster's owner.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	// The run-as user may be unable to enter our working directory.
	cmd.Dir = "/"
	cmd.Env = c.env
	if c.runAs != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: c.runAs.uid, Gid: c.runAs.gid, Groups: c.runAs.groups,
		}}
	}
	return cmd
}

// URL returns a pgx connection URL for database dbname on the cluster, as the
// superuser, through the Unix socket.
func (c *Cluster) URL(dbname string) string {
	q := url.Values{}
	q.Set("host", c.socketDir)
	q.Set("port", strconv.Itoa(c.port))
	q.Set("user", superuser)
	u := url.URL{Scheme: "postgres", Path: "/" + dbname, RawQuery: q.Encode()}
	return u.String()
}

// EnsureDatabase creates database name unless it exists.
func (c *Cluster) EnsureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("ensure database %s: %w", name, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	var exists bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		return fmt.Errorf("ensure database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	// CREATE DATABASE takes no parameters; the name is quoted as an
	// identifier instead.
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	// 42P04 duplicate_database: another process won the race.
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42P04" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ensure database %s: %w", name, err)
	}
	c.logger.InfoContext(ctx, "postgres database created", "database", name)
	return nil
}

// Stop shuts the server down (fast mode: open sessions are disconnected) and
// waits for it to exit. Calling it again does nothing. ctx bounds the wait; a
// caller shutting down on a cancelled context should pass
// context.WithoutCancel(ctx) or a fresh timeout context.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lock == nil {
		return nil
	}
	if err := c.pgCtl(ctx, "stop", "-m", "fast", "-w"); err != nil {
		// Someone may have stopped the server behind our back; that is
		// the state we want.
		if running, serr := c.running(ctx); serr != nil || running {
			return fmt.Errorf("stop postgres in %s: %w", c.dataDir, err)
		}
	}
	c.release()
	c.logger.InfoContext(ctx, "postgres stopped", "data_dir", c.dataDir)
	return nil
}

// release drops the cluster lock and removes a private socket directory.
func (c *Cluster) release() {
	if c.privateSocketDir && c.socketDir != "" {
		_ = os.RemoveAll(c.socketDir)
	}
	if c.lock != nil {
		_ = c.lock.Close()
		c.lock = nil
	}
}

// lockCluster takes an exclusive flock on path, creating it if needed, and
// writes our pid into it for the error message of the next contender. The
// kernel drops the lock when the process dies, however it dies, which is what
// tells a dead owner from a live one. The file is opened close-on-exec, so
// the server processes do not inherit it.
func lockCluster(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s, lock file %s)", ErrInUse, bytes.TrimSpace(pid), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// readVersionFile returns the major version stored in a cluster's
// PG_VERSION, or "" when the directory holds no cluster yet.
func readVersionFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// findBinaries locates the server programs: on PATH when all three are
// there, else in the highest version directory matching glob. When want is
// set (an existing cluster's major version), only that version will do,
// since a cluster cannot be opened by another major version.
func findBinaries(ctx context.Context, pathEnv, glob, want string) (binaries, error) {
	var candidates []binaries
	if b, ok := lookPathAll(pathEnv); ok {
		candidates = append(candidates, b)
	}
	dirs, _ := filepath.Glob(glob) // the pattern is constant, so never malformed
	slices.SortFunc(dirs, func(a, b string) int {
		// .../15/bin before .../9.6/bin
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, dir := range dirs {
		b := binaries{
			initdb:   filepath.Join(dir, "initdb"),
			pgCtl:    filepath.Join(dir, "pg_ctl"),
			postgres: filepath.Join(dir, "postgres"),
		}
		if isExecutable(b.initdb) && isExecutable(b.pgCtl) && isExecutable(b.postgres) {
			candidates = append(candidates, b)
		}
	}
	if len(candidates) == 0 {
		return binaries{}, ErrBinariesNotFound
	}

	var found []string
	for _, b := range candidates {
		out, err := exec.CommandContext(ctx, b.pgCtl, "--version").Output()
		if err != nil {
			return binaries{}, fmt.Errorf("%s --version: %w", b.pgCtl, err)
		}
		b.version = majorVersion(string(out))
		if want == "" || b.version == want {
			return b, nil
		}
		found = append(found, b.version+" ("+filepath.Dir(b.pgCtl)+")")
	}
	return binaries{}, fmt.Errorf("cluster was created by PostgreSQL %s but only found PostgreSQL %s: "+
		"install the PostgreSQL %s server or upgrade the cluster with pg_upgrade",
		want, strings.Join(found, ", "), want)
}

// lookPathAll finds the three programs on pathEnv.
func lookPathAll(pathEnv string) (binaries, bool) {
	var b binaries
	for _, p := range []struct {
		name string
		dst  *string
	}{{"initdb", &b.initdb}, {"pg_ctl", &b.pgCtl}, {"postgres", &b.postgres}} {
		for dir := range strings.SplitSeq(pathEnv, string(os.PathListSeparator)) {
			if dir == "" || !filepath.IsAbs(dir) {
				continue // like exec.LookPath, never run programs from the working directory
			}
			if f := filepath.Join(dir, p.name); isExecutable(f) {
				*p.dst = f
				break
			}
		}
		if *p.dst == "" {
			return binaries{}, false
		}
	}
	return b, true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// majorVersion extracts the major version from "pg_ctl (PostgreSQL) 15.8
// (Debian 15.8-0+deb12u1)": "15", or "9.6" for the two-part majors before
// PostgreSQL 10.
func majorVersion(versionOutput string) string {
	fields := strings.Fields(versionOutput)
	if len(fields) < 3 {
		return ""
	}
	v := fields[2]
	parts := strings.FieldsFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if len(parts) == 0 {
		return v
	}
	if n, _ := strconv.Atoi(parts[0]); n < 10 && len(parts) > 1 {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// compareVersions orders dotted numeric versions ("9.6" < "15").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

// childEnv is our environment minus the libpq variables (PGPORT, PGDATA,
// PGHOST...), which would otherwise change what pg_ctl and the server do.
func childEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PG") })
}

// shellJoin quotes args for /bin/sh.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

// tailOf returns the last lines of a log file, to explain a failed start.
func tailOf(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(0, len(lines)-15):]
	return "\nlast lines of " + path + ":\n" + strings.Join(lines, "\n")
}

// ensureRunAs returns the postgres system user, creating it if missing.
func ensureRunAs(ctx context.Context, logger *slog.Logger) (*runAs, error) {
	u, err := user.Lookup(runAsName)
	if _, ok := errors.AsType[user.UnknownUserError](err); ok {
		logger.WarnContext(ctx, "creating system user for postgres", "user", runAsName)
		out, aerr := exec.CommandContext(ctx, "useradd", "--system", "--no-create-home", runAsName).CombinedOutput()
		if aerr != nil {
			return nil, fmt.Errorf("postgres refuses to run as root and user %q does not exist; "+
				"creating it failed (create it with useradd --system postgres, or run spelt as an unprivileged user): %w: %s",
				runAsName, aerr, bytes.TrimSpace(out))
		}
		u, err = user.Lookup(runAsName)
	}
	if err != nil {
		return nil, fmt.Errorf("look up user %q: %w", runAsName, err)
	}
	r := &runAs{name: u.Username}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w", runAsName, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q: %w", runAsName, u.Gid, err)
	}
	r.uid, r.gid = uint32(uid), uint32(gid)
	if r.uid == 0 {
		return nil, fmt.Errorf("user %q has uid 0, and postgres refuses to run as root", runAsName)
	}
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{u.Gid}
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			r.groups = append(r.groups, uint32(n))
		}
	}
	return r, nil
}

// ensureSearchable makes dir and each of its ancestors searchable (x) by r.
//
// The server, running as r, opens its data directory by absolute path, so it
// needs search permission on every directory above it. Under root those are
// often private: t.TempDir() creates /tmp/TestName123 as 0700, and the
// default data_dir may sit under /root (0700). Where r lacks it we add o+x,
// which lets others traverse the directory to a name they already know but
// not list it; directories r can already search are left alone. The
// alternative, changing their owner or group, would take them from root.
func ensureSearchable(ctx context.Context, logger *slog.Logger, dir string, r *runAs) error {
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !canSearch(fi, r) {
			if err := os.Chmod(dir, fi.Mode()|0o001); err != nil {
				return fmt.Errorf("let user %s reach the cluster: %w", r.name, err)
			}
			logger.WarnContext(ctx, "made directory searchable by others so that postgres can reach its cluster",
				"path", dir, "user", r.name)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// canSearch applies the Unix permission check for search on a directory:
// owner bits if r owns it, else group bits if r is in its group, else other
// bits.
func canSearch(fi fs.FileInfo, r *runAs) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == r.uid:
		return perm&0o100 != 0
	case slices.Contains(r.groups, st.Gid) || st.Gid == r.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// chownTree gives root's files in a cluster directory to r.
func chownTree(root string, r *runAs) error {
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(r.uid), int(r.gid))
	})
}
