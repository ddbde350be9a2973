package pgbatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LazyTx is a pgx.Tx whose BEGIN is not a round trip of its own: it goes to the server
// in one batch with the transaction's first statement. A transaction that runs nothing
// never reaches the server. Savepoints (Begin) and COPY start the transaction first.
type LazyTx struct {
	conn       *pgxpool.Conn
	begin      []string
	begun      bool
	closed     bool
	savepoints int
}

var _ pgx.Tx = (*LazyTx)(nil)

// BeginLazy acquires a connection of pool for a transaction that begins with begin
// (statements such as "BEGIN ISOLATION LEVEL REPEATABLE READ", then "SET LOCAL ...";
// "BEGIN" when none are given).
func BeginLazy(ctx context.Context, pool *pgxpool.Pool, begin ...string) (*LazyTx, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if len(begin) == 0 {
		begin = []string{"BEGIN"}
	}
	return &LazyTx{conn: c, begin: begin}, nil
}

// batch returns a batch that begins the transaction when it has not begun, and how many
// of its results are the beginning's.
func (t *LazyTx) batch() (*pgx.Batch, int) {
	b := &pgx.Batch{}
	if t.begun {
		return b, 0
	}
	for _, q := range t.begin {
		b.Queue(q)
	}
	t.begun = true
	return b, len(t.begin)
}

func (t *LazyTx) check() error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	return nil
}

// ensure begins the transaction now if it has not begun.
func (t *LazyTx) ensure(ctx context.Context) error {
	if t.begun {
		return nil
	}
	b, n := t.batch()
	br := t.conn.SendBatch(ctx, b)
	return skipThenClose(br, n)
}

func skip(br pgx.BatchResults, n int) error {
	for range n {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
	}
	return nil
}

func skipThenClose(br pgx.BatchResults, n int) error {
	err := skip(br, n)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// Exec implements pgx.Tx.
func (t *LazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.check(); err != nil {
		return pgconn.CommandTag{}, err
	}
	if t.begun {
		return t.conn.Exec(ctx, sql, args...)
	}
	b, n := t.batch()
	b.Queue(sql, args...)
	br := t.conn.SendBatch(ctx, b)
	if err := skip(br, n); err != nil {
		_ = br.Close()
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// Query implements pgx.Tx.
func (t *LazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if t.begun {
		return t.conn.Query(ctx, sql, args...)
	}
	b, n := t.batch()
	b.Queue(sql, args...)
	br := t.conn.SendBatch(ctx, b)
	if err := skip(br, n); err != nil {
		_ = br.Close()
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// batchRows closes its batch's results with itself, or once read to the end (as pgx's
// rows free their connection then).
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// QueryRow implements pgx.Tx.
func (t *LazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.check(); err != nil {
		return errRowOf{err}
	}
	if t.begun {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	b, n := t.batch()
	b.Queue(sql, args...)
	br := t.conn.SendBatch(ctx, b)
	if err := skip(br, n); err != nil {
		_ = br.Close()
		return errRowOf{err}
	}
	return &batchRow{br: br}
}

// SendBatch implements pgx.Tx.
func (t *LazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := t.check(); err != nil {
		return errResults{err}
	}
	if t.begun {
		return t.conn.SendBatch(ctx, b)
	}
	nb, n := t.batch()
	nb.QueuedQueries = append(nb.QueuedQueries, b.QueuedQueries...)
	return &skippingResults{br: t.conn.SendBatch(ctx, nb), skip: n}
}

// skippingResults hides the results of the statements that began the transaction.
type skippingResults struct {
	br   pgx.BatchResults
	skip int
	err  error
}

func (s *skippingResults) skipped() error {
	if s.skip > 0 {
		n := s.skip
		s.skip = 0
		s.err = skip(s.br, n)
	}
	return s.err
}

func (s *skippingResults) Exec() (pgconn.CommandTag, error) {
	if err := s.skipped(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return s.br.Exec()
}

func (s *skippingResults) Query() (pgx.Rows, error) {
	if err := s.skipped(); err != nil {
		return nil, err
	}
	return s.br.Query()
}

func (s *skippingResults) QueryRow() pgx.Row {
	if err := s.skipped(); err != nil {
		return errRowOf{err}
	}
	return s.br.QueryRow()
}

// Tx implements pgx.BatchResults: the batch began no transaction of its own.
func (s *skippingResults) Tx() pgx.Tx { return nil }

func (s *skippingResults) Close() error {
	err := s.skipped()
	if cerr := s.br.Close(); err == nil {
		err = cerr
	}
	return err
}

type errResults struct{ err error }

func (e errResults) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, e.err }
func (e errResults) Query() (pgx.Rows, error)         { return nil, e.err }
func (e errResults) QueryRow() pgx.Row                { return errRowOf{e.err} }
func (e errResults) Close() error                     { return e.err }
func (e errResults) Tx() pgx.Tx                       { return nil }

// CopyFrom implements pgx.Tx.
func (t *LazyTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	if err := t.ensure(ctx); err != nil {
		return 0, err
	}
	return t.conn.CopyFrom(ctx, table, columns, src)
}

// Begin starts a savepoint (a pseudo nested transaction).
func (t *LazyTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := t.ensure(ctx); err != nil {
		return nil, err
	}
	return t.savepoint(ctx)
}

func (t *LazyTx) savepoint(ctx context.Context) (pgx.Tx, error) {
	t.savepoints++
	name := fmt.Sprintf("sp_%d", t.savepoints)
	if _, err := t.conn.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return nil, err
	}
	return &savepointTx{top: t, name: name}, nil
}

// savepointTx is a savepoint of a LazyTx that has begun.
type savepointTx struct {
	top    *LazyTx
	name   string
	closed bool
}

var _ pgx.Tx = (*savepointTx)(nil)

func (s *savepointTx) check() error {
	if s.closed || s.top.closed {
		return pgx.ErrTxClosed
	}
	return nil
}

func (s *savepointTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.top.savepoint(ctx)
}

func (s *savepointTx) Commit(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	s.closed = true
	_, err := s.top.conn.Exec(ctx, "RELEASE SAVEPOINT "+s.name)
	return err
}

func (s *savepointTx) Rollback(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	s.closed = true
	_, err := s.top.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT "+s.name)
	return err
}

func (s *savepointTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return s.top.CopyFrom(ctx, table, columns, src)
}

func (s *savepointTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return s.top.SendBatch(ctx, b)
}

func (s *savepointTx) LargeObjects() pgx.LargeObjects { return s.top.LargeObjects() }

func (s *savepointTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return s.top.Prepare(ctx, name, sql)
}

func (s *savepointTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return s.top.Exec(ctx, sql, args...)
}

func (s *savepointTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return s.top.Query(ctx, sql, args...)
}

func (s *savepointTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return s.top.QueryRow(ctx, sql, args...)
}

func (s *savepointTx) Conn() *pgx.Conn { return s.top.Conn() }

// Commit implements pgx.Tx.
func (t *LazyTx) Commit(ctx context.Context) error {
	if err := t.check(); err != nil {
		return err
	}
	t.closed = true
	defer t.conn.Release()
	if !t.begun {
		return nil
	}
	tag, err := t.conn.Exec(ctx, "COMMIT")
	if err != nil {
		t.conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // the connection's state is unknown
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// CommitBatch sends b's statements and COMMIT in one round trip. A statement queued with
// a callback (QueuedQuery.Fn: Query, QueryRow, Exec) reads its own results. When a
// statement of b or a callback fails, the transaction is rolled back and its error
// returned.
func (t *LazyTx) CommitBatch(ctx context.Context, b *pgx.Batch) error {
	if b.Len() == 0 {
		return t.Commit(ctx)
	}
	if err := t.check(); err != nil {
		return err
	}
	nb, n := t.batch()
	nb.QueuedQueries = append(nb.QueuedQueries, b.QueuedQueries...)
	nb.Queue("COMMIT")
	br := t.conn.SendBatch(ctx, nb)
	err := skip(br, n)
	for _, qq := range b.QueuedQueries {
		if err != nil {
			break
		}
		if qq.Fn != nil {
			err = qq.Fn(br)
		} else {
			_, err = br.Exec()
		}
	}
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// The statements' error skipped the COMMIT: the transaction is open and failed.
		_ = t.Rollback(context.WithoutCancel(ctx))
		return err
	}
	t.closed = true
	t.conn.Release()
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// Rollback implements pgx.Tx.
func (t *LazyTx) Rollback(ctx context.Context) error {
	if err := t.check(); err != nil {
		return err
	}
	t.closed = true
	defer t.conn.Release()
	if !t.begun || t.conn.Conn().IsClosed() {
		return nil // nothing began, or the connection died and took the transaction with it
	}
	if _, err := t.conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // the connection's state is unknown
		return err
	}
	return nil
}

// LargeObjects is not supported.
func (t *LazyTx) LargeObjects() pgx.LargeObjects {
	panic(errors.New("pgbatch: LazyTx has no large objects"))
}

// Prepare implements pgx.Tx.
func (t *LazyTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.conn.Conn().Prepare(ctx, name, sql)
}

// Conn implements pgx.Tx.
func (t *LazyTx) Conn() *pgx.Conn { return t.conn.Conn() }
