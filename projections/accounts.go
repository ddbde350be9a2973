package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Accounts projects accounts, their devices and their access tokens (hashes only).
type Accounts struct{}

// Name implements Projector.
func (Accounts) Name() string { return "accounts" }

// Version implements Projector.
func (Accounts) Version() int { return 3 }

// Tables implements Projector.
func (Accounts) Tables() []string { return []string{"accounts", "devices", "access_tokens"} }

// Handles implements Projector.
func (Accounts) Handles(t string) bool {
	switch t {
	case eventlog.TypeAccountRegistered, eventlog.TypeDeviceLoggedIn,
		eventlog.TypeDeviceLoggedOut, eventlog.TypeAllDevicesLoggedOut,
		eventlog.TypeAccountDeactivated, eventlog.TypeDeviceRenamed, eventlog.TypeDevicesSeen,
		eventlog.TypeTokensRefreshed, eventlog.TypeGuestUpgraded, eventlog.TypeDeviceTokensRevoked,
		eventlog.TypeTokensRefreshedV2, eventlog.TypeRefreshTokenRetired:
		return true
	}
	return false
}

// reducible reports whether accountsDelta can fold events of type t: the kinds replays
// are made of. The others are applied one by one, in order, between the folded runs.
func reducible(t string) bool {
	switch t {
	case eventlog.TypeAccountRegistered, eventlog.TypeDeviceLoggedIn,
		eventlog.TypeDeviceLoggedOut, eventlog.TypeAllDevicesLoggedOut:
		return true
	}
	return false
}

// Apply implements Projector. It reduces the batch to its net effect on the read model
// (accountsDelta) and sends that in one round trip: the deletes one key each, the inserts
// one statement per table with the rows as arrays (one or two statements per event made
// a replay spend most of its time in single-row inserts). The result is the one that
// applying the events one by one, in order, gives; in the one case where the reduction
// cannot tell without the table's contents, it applies them one by one. Events of the
// kinds it does not fold split the batch into runs.
func (Accounts) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	run := 0
	for i, e := range events {
		if reducible(e.Type) {
			continue
		}
		if err := applyAccountsRun(ctx, tx, events[run:i]); err != nil {
			return err
		}
		if err := applyAccountsOneByOne(ctx, tx, events[i:i+1]); err != nil {
			return err
		}
		run = i + 1
	}
	return applyAccountsRun(ctx, tx, events[run:])
}

// applyAccountsRun applies events of the reducible kinds through their net effect.
func applyAccountsRun(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	if len(events) == 0 {
		return nil
	}
	d := newAccountsDelta()
	for _, e := range events {
		if err := d.add(e); err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
	}
	if hashes := d.tokenHashes(); d.logoutAfterLogin && len(hashes) > 0 {
		// A login whose token hash the table already holds is ignored (ON CONFLICT DO
		// NOTHING); if a later logout in the batch deletes the row holding it, the net
		// effect (deletes first, then inserts) would keep the token instead. SHA-256
		// hashes of random tokens do not repeat, so this is for exactness only.
		var clash bool
		if err := tx.QueryRow(ctx, accountsTokensExist, hashes).Scan(&clash); err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
		if clash {
			if mem := accountsMemoryOf(ctx); mem != nil {
				mem.off = true // one-by-one inserts are not remembered
			}
			return applyAccountsOneByOne(ctx, tx, events)
		}
	}
	if err := d.send(ctx, tx, accountsMemoryOf(ctx)); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// applyAccountsOneByOne applies events with one or two statements each, in order.
func applyAccountsOneByOne(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	q := projdb.New()
	for _, e := range events {
		var err error
		switch e.Type {
		case eventlog.TypeAccountRegistered:
			var d eventlog.AccountRegistered
			if err = e.Decode(&d); err == nil {
				err = q.AccountInsert(ctx, &b, projdb.AccountInsertParams{
					UserID: d.UserID, Localpart: d.Localpart, IsGuest: d.Guest, IsAdmin: d.Admin, CreatedAt: e.RecordedAt,
				})
			}
		case eventlog.TypeDeviceLoggedIn:
			var d eventlog.DeviceLoggedIn
			if err = e.Decode(&d); err == nil {
				err = q.DeviceUpsert(ctx, &b, projdb.DeviceUpsertParams{
					UserID: d.UserID, DeviceID: d.DeviceID, DisplayName: d.DisplayName, CreatedAt: e.RecordedAt,
				})
			}
			if err == nil {
				err = q.AccessTokenInsert(ctx, &b, projdb.AccessTokenInsertParams{
					TokenHash: d.TokenHash, UserID: d.UserID, DeviceID: d.DeviceID, CreatedAt: e.RecordedAt, ExpiresAt: d.ExpiresAt,
					RefreshHash: d.RefreshTokenHash,
				})
			}
		case eventlog.TypeDeviceLoggedOut:
			var d eventlog.DeviceLoggedOut
			if err = e.Decode(&d); err == nil {
				err = q.DeviceDeleteOne(ctx, &b, projdb.DeviceDeleteOneParams{UserID: d.UserID, DeviceID: d.DeviceID})
			}
			if err == nil {
				err = q.AccessTokenDeleteByDevice(ctx, &b, projdb.AccessTokenDeleteByDeviceParams{UserID: d.UserID, DeviceID: d.DeviceID})
			}
		case eventlog.TypeAllDevicesLoggedOut:
			var d eventlog.AllDevicesLoggedOut
			if err = e.Decode(&d); err == nil {
				err = q.DeviceDeleteByUser(ctx, &b, d.UserID)
			}
			if err == nil {
				err = q.AccessTokenDeleteByUser(ctx, &b, d.UserID)
			}
		case eventlog.TypeAccountDeactivated:
			var d eventlog.AccountDeactivated
			if err = e.Decode(&d); err == nil {
				err = q.AccountDeactivate(ctx, &b, d.UserID)
			}
			if err == nil {
				err = q.DeviceDeleteByUser(ctx, &b, d.UserID)
			}
			if err == nil {
				err = q.AccessTokenDeleteByUser(ctx, &b, d.UserID)
			}
		case eventlog.TypeTokensRefreshedV2:
			var d eventlog.TokensRefreshedV2
			if err = e.Decode(&d); err == nil {
				for _, h := range append(d.Revoke, d.UsedRefreshHash) {
					if err = q.AccessTokenDeleteByRefresh(ctx, &b, h); err != nil {
						break
					}
				}
			}
			if err == nil {
				err = q.AccessTokenInsert(ctx, &b, projdb.AccessTokenInsertParams{
					TokenHash: d.TokenHash, UserID: d.UserID, DeviceID: d.DeviceID, CreatedAt: e.RecordedAt,
					ExpiresAt: d.ExpiresAt, RefreshHash: d.RefreshTokenHash,
				})
			}
			if err == nil {
				err = q.AccessTokenSetRetires(ctx, &b, projdb.AccessTokenSetRetiresParams{TokenHash: d.TokenHash, Retires: d.UsedRefreshHash})
			}
		case eventlog.TypeRefreshTokenRetired:
			var d eventlog.RefreshTokenRetired
			if err = e.Decode(&d); err == nil {
				err = q.AccessTokenClearRetires(ctx, &b, d.RefreshHash)
			}
		case eventlog.TypeDeviceTokensRevoked:
			var d eventlog.DeviceTokensRevoked
			if err = e.Decode(&d); err == nil {
				err = q.AccessTokenDeleteByDevice(ctx, &b, projdb.AccessTokenDeleteByDeviceParams{UserID: d.UserID, DeviceID: d.DeviceID})
			}
		case eventlog.TypeGuestUpgraded:
			var d eventlog.GuestUpgraded
			if err = e.Decode(&d); err == nil {
				err = q.AccountUpgradeGuest(ctx, &b, d.UserID)
			}
		case eventlog.TypeTokensRefreshed:
			var d eventlog.TokensRefreshed
			if err = e.Decode(&d); err == nil {
				err = q.AccessTokenDeleteByRefresh(ctx, &b, d.UsedRefreshHash)
			}
			if err == nil {
				err = q.AccessTokenInsert(ctx, &b, projdb.AccessTokenInsertParams{
					TokenHash: d.TokenHash, UserID: d.UserID, DeviceID: d.DeviceID, CreatedAt: e.RecordedAt,
					ExpiresAt: d.ExpiresAt, RefreshHash: d.RefreshTokenHash,
				})
			}
		case eventlog.TypeDeviceRenamed:
			var d eventlog.DeviceRenamed
			if err = e.Decode(&d); err == nil {
				name := d.DisplayName
				err = q.DeviceRename(ctx, &b, projdb.DeviceRenameParams{UserID: d.UserID, DeviceID: d.DeviceID, DisplayName: &name})
			}
		case eventlog.TypeDevicesSeen:
			var d eventlog.DevicesSeen
			if err = e.Decode(&d); err == nil {
				for _, s := range d.Seen {
					ip, ts := s.IP, s.At
					if err = q.DeviceSeen(ctx, &b, projdb.DeviceSeenParams{UserID: s.UserID, DeviceID: s.DeviceID, Ip: &ip, Ts: &ts}); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
	}
	return b.Send(ctx, tx)
}

// deviceKey identifies a device.
type deviceKey struct{ user, device string }

// accountsDelta is the net effect of a batch of account events, built in log order:
//
//   - accounts: the first registration of each user (later ones, and those of users the
//     table holds, do nothing);
//   - deletes of the rows the table held before the batch: every device and token of
//     the users who logged out everywhere, and of the devices that logged out;
//   - the devices and tokens logged in after the last logout that concerns them, each
//     device once, with the time of its first such login (a device the table holds
//     keeps its own) and the last display name given (a login without one keeps the
//     previous name, in the batch or the table),
//     and each token hash once (the first login with it wins, as the table's
//     ON CONFLICT DO NOTHING would have it).
//
// The deletes are sent before the inserts. Devices are keyed by (user, device) and
// deleted by the same key or by user, so the batch alone tells which of its logins
// survive; tokens are keyed by their hash, which a login may share with a row of
// another device in the table: see Apply.
type accountsDelta struct {
	accounts   []accountRow
	registered map[string]bool

	wipedUsers []string
	wiped      map[string]bool
	loggedOut  []deviceKey
	out        map[deviceKey]bool

	devices     []*deviceRow // in order of first login; gone ones are skipped
	device      map[deviceKey]*deviceRow
	userDevices map[string][]*deviceRow

	tokens       []*tokenRow // in login order; gone ones are skipped
	token        map[string]*tokenRow
	userTokens   map[string][]*tokenRow
	deviceTokens map[deviceKey][]*tokenRow

	loggedIn, logoutAfterLogin bool
}

type accountRow struct {
	userID, localpart string
	guest, admin      bool
	created           time.Time
}

type deviceRow struct {
	key     deviceKey
	display *string
	created time.Time
	gone    bool
}

type tokenRow struct {
	hash    []byte
	key     deviceKey
	created time.Time
	expires *time.Time
	refresh []byte
	gone    bool
}

func newAccountsDelta() *accountsDelta {
	return &accountsDelta{
		registered:   map[string]bool{},
		wiped:        map[string]bool{},
		out:          map[deviceKey]bool{},
		device:       map[deviceKey]*deviceRow{},
		userDevices:  map[string][]*deviceRow{},
		token:        map[string]*tokenRow{},
		userTokens:   map[string][]*tokenRow{},
		deviceTokens: map[deviceKey][]*tokenRow{},
	}
}

func (d *accountsDelta) add(e eventlog.Event) error {
	switch e.Type {
	case eventlog.TypeAccountRegistered:
		var p eventlog.AccountRegistered
		if err := e.Decode(&p); err != nil {
			return err
		}
		if !d.registered[p.UserID] {
			d.registered[p.UserID] = true
			d.accounts = append(d.accounts, accountRow{userID: p.UserID, localpart: p.Localpart, guest: p.Guest, admin: p.Admin, created: e.RecordedAt})
		}
	case eventlog.TypeDeviceLoggedIn:
		var p eventlog.DeviceLoggedIn
		if err := e.Decode(&p); err != nil {
			return err
		}
		k := deviceKey{p.UserID, p.DeviceID}
		if r := d.device[k]; r != nil {
			if p.DisplayName != nil {
				r.display = p.DisplayName
			}
		} else {
			r := &deviceRow{key: k, display: p.DisplayName, created: e.RecordedAt}
			d.devices = append(d.devices, r)
			d.device[k] = r
			d.userDevices[k.user] = append(d.userDevices[k.user], r)
		}
		if d.token[string(p.TokenHash)] == nil {
			t := &tokenRow{hash: p.TokenHash, key: k, created: e.RecordedAt, expires: p.ExpiresAt, refresh: p.RefreshTokenHash}
			d.tokens = append(d.tokens, t)
			d.token[string(t.hash)] = t
			d.userTokens[k.user] = append(d.userTokens[k.user], t)
			d.deviceTokens[k] = append(d.deviceTokens[k], t)
		}
		d.loggedIn = true
	case eventlog.TypeDeviceLoggedOut:
		var p eventlog.DeviceLoggedOut
		if err := e.Decode(&p); err != nil {
			return err
		}
		k := deviceKey{p.UserID, p.DeviceID}
		if !d.out[k] {
			d.out[k] = true
			d.loggedOut = append(d.loggedOut, k)
		}
		if r := d.device[k]; r != nil {
			r.gone = true
			delete(d.device, k)
		}
		for _, t := range d.deviceTokens[k] {
			d.dropToken(t)
		}
		delete(d.deviceTokens, k)
		d.logoutAfterLogin = d.logoutAfterLogin || d.loggedIn
	case eventlog.TypeAllDevicesLoggedOut:
		var p eventlog.AllDevicesLoggedOut
		if err := e.Decode(&p); err != nil {
			return err
		}
		if !d.wiped[p.UserID] {
			d.wiped[p.UserID] = true
			d.wipedUsers = append(d.wipedUsers, p.UserID)
		}
		for _, r := range d.userDevices[p.UserID] {
			if !r.gone {
				r.gone = true
				delete(d.device, r.key)
			}
		}
		delete(d.userDevices, p.UserID)
		for _, t := range d.userTokens[p.UserID] {
			d.dropToken(t)
		}
		delete(d.userTokens, p.UserID)
		d.logoutAfterLogin = d.logoutAfterLogin || d.loggedIn
	}
	return nil
}

func (d *accountsDelta) dropToken(t *tokenRow) {
	if t.gone {
		return
	}
	t.gone = true
	if d.token[string(t.hash)] == t {
		delete(d.token, string(t.hash))
	}
}

// tokenHashes returns the hashes of the tokens the batch inserts.
func (d *accountsDelta) tokenHashes() [][]byte {
	var out [][]byte
	for _, t := range d.tokens {
		if !t.gone {
			out = append(out, t.hash)
		}
	}
	return out
}

// send writes the delta in one round trip: the deletes first, then the inserts.
func (d *accountsDelta) send(ctx context.Context, tx pgx.Tx, mem *accountsMemory) error {
	var b pgbatch.DB
	// During a rebuild from empty tables (mem) rows the rebuild does not know of are new:
	// they go in with COPY, after the batch of deletes and upserts. A row that exists
	// after all (a duplicate in the log) fails the COPY, and the runner then applies the
	// events one by one, without memory.
	bulk := mem != nil && !mem.off
	var accountRows, deviceRows, tokenRows [][]any
	if n := len(d.accounts); n > 0 && bulk {
		for _, a := range d.accounts {
			accountRows = append(accountRows, []any{a.userID, a.localpart, a.guest, a.admin, false, a.created})
		}
	} else if n > 0 {
		users, localparts := make([]string, n), make([]string, n)
		guests, admins := make([]bool, n), make([]bool, n)
		created := make([]time.Time, n)
		for i, a := range d.accounts {
			users[i], localparts[i], guests[i], admins[i], created[i] = a.userID, a.localpart, a.guest, a.admin, a.created
		}
		_, _ = b.Exec(ctx, accountsInsertMany, users, localparts, guests, admins, created)
	}
	// The deletes go one key each, through the same statements as applyAccountsOneByOne:
	// equality on the keys' leading columns is an index scan whatever the planner knows.
	// A join with the keys as an array is planned (and cached) as a hash join over a
	// sequential scan while a rebuild's tables are small and without statistics, and then
	// scans the whole table for every batch.
	// During a rebuild from empty tables, deletes of devices (and so tokens) this
	// rebuild never inserted are skipped: those rows cannot exist.
	q := projdb.New()
	deleted := map[deviceKey]bool{}
	wiped := map[string]bool{}
	for _, u := range d.wipedUsers {
		wiped[u] = true
		if mem.mayHaveUser(u) {
			_ = q.DeviceDeleteByUser(ctx, &b, u)
			_ = q.AccessTokenDeleteByUser(ctx, &b, u)
		}
	}
	for _, k := range d.loggedOut {
		deleted[k] = true
		if mem.mayHave(k) {
			_ = q.DeviceDeleteOne(ctx, &b, projdb.DeviceDeleteOneParams{UserID: k.user, DeviceID: k.device})
			_ = q.AccessTokenDeleteByDevice(ctx, &b, projdb.AccessTokenDeleteByDeviceParams{UserID: k.user, DeviceID: k.device})
		}
	}
	var users, devices []string
	var names []*string
	var created []time.Time
	for _, r := range d.devices {
		if r.gone {
			continue
		}
		if bulk && (!mem.mayHave(r.key) || deleted[r.key] || wiped[r.key.user]) {
			deviceRows = append(deviceRows, []any{r.key.user, r.key.device, r.display, r.created})
			continue
		}
		users, devices = append(users, r.key.user), append(devices, r.key.device)
		names, created = append(names, r.display), append(created, r.created)
	}
	if len(users) > 0 {
		_, _ = b.Exec(ctx, devicesUpsertMany, users, devices, names, created)
	}
	var hashes, refresh [][]byte
	var expires []*time.Time
	users, devices, created = users[:0], devices[:0], created[:0]
	for _, t := range d.tokens {
		if t.gone {
			continue
		}
		if bulk {
			tokenRows = append(tokenRows, []any{t.hash, t.key.user, t.key.device, t.created, t.expires, t.refresh})
			continue
		}
		hashes = append(hashes, t.hash)
		users, devices = append(users, t.key.user), append(devices, t.key.device)
		created, expires = append(created, t.created), append(expires, t.expires)
		refresh = append(refresh, t.refresh)
	}
	if len(hashes) > 0 {
		_, _ = b.Exec(ctx, accessTokensInsertMany, hashes, users, devices, created, expires, refresh)
	}
	if err := b.Send(ctx, tx); err != nil {
		return err
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"accounts", []string{"user_id", "localpart", "is_guest", "is_admin", "deactivated", "created_at"}, accountRows},
		{"devices", []string{"user_id", "device_id", "display_name", "created_at"}, deviceRows},
		{"access_tokens", []string{"token_hash", "user_id", "device_id", "created_at", "expires_at", "refresh_hash"}, tokenRows},
	} {
		if len(c.rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("copy %s: %w", c.table, err)
		}
	}
	// Remember only what was written.
	for _, u := range d.wipedUsers {
		mem.forgetUser(u)
	}
	for _, k := range d.loggedOut {
		mem.forget(k)
	}
	for _, r := range d.devices {
		if !r.gone {
			mem.remember(r.key)
		}
	}
	return nil
}

// accountsMemory is the accounts projector's rebuildMemory: the devices it inserted
// (by user). nil, or off, means no memory: every delete is sent.
type accountsMemory struct {
	off     bool
	devices map[string]map[string]struct{}
}

func accountsMemoryOf(ctx context.Context) *accountsMemory {
	return rebuildMemoryOf(ctx, "accounts", func() *accountsMemory {
		return &accountsMemory{devices: map[string]map[string]struct{}{}}
	})
}

func (m *accountsMemory) mayHaveUser(user string) bool {
	return m == nil || m.off || len(m.devices[user]) > 0
}

func (m *accountsMemory) mayHave(k deviceKey) bool {
	if m == nil || m.off {
		return true
	}
	_, ok := m.devices[k.user][k.device]
	return ok
}

func (m *accountsMemory) forgetUser(user string) {
	if m != nil {
		delete(m.devices, user)
	}
}

func (m *accountsMemory) forget(k deviceKey) {
	if m != nil {
		delete(m.devices[k.user], k.device)
	}
}

func (m *accountsMemory) remember(k deviceKey) {
	if m == nil {
		return
	}
	if m.devices[k.user] == nil {
		m.devices[k.user] = map[string]struct{}{}
	}
	m.devices[k.user][k.device] = struct{}{}
}

// The statements of accountsDelta. Arrays come in as parallel columns through unnest;
// WITH ORDINALITY and ORDER BY insert rows in log order.
const (
	accountsInsertMany = `INSERT INTO accounts (user_id, localpart, is_guest, is_admin, deactivated, created_at)
SELECT user_id, localpart, is_guest, is_admin, false, created_at
FROM unnest($1::text[], $2::text[], $3::boolean[], $4::boolean[], $5::timestamptz[])
	WITH ORDINALITY AS r (user_id, localpart, is_guest, is_admin, created_at, n)
ORDER BY n
ON CONFLICT (user_id) DO NOTHING`

	devicesUpsertMany = `INSERT INTO devices (user_id, device_id, display_name, created_at)
SELECT user_id, device_id, display_name, created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
	WITH ORDINALITY AS r (user_id, device_id, display_name, created_at, n)
ORDER BY n
ON CONFLICT (user_id, device_id) DO UPDATE SET
	display_name = COALESCE(excluded.display_name, devices.display_name)`

	accessTokensInsertMany = `INSERT INTO access_tokens (token_hash, user_id, device_id, created_at, expires_at, refresh_hash)
SELECT token_hash, user_id, device_id, created_at, expires_at, refresh_hash
FROM unnest($1::bytea[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bytea[])
	WITH ORDINALITY AS r (token_hash, user_id, device_id, created_at, expires_at, refresh_hash, n)
ORDER BY n
ON CONFLICT (token_hash) DO NOTHING`

	// One probe of the primary key per hash: the LIMIT keeps the planner from turning
	// it into a hash join over the whole table (see send).
	accountsTokensExist = `SELECT EXISTS (SELECT FROM unnest($1::bytea[]) AS h (token_hash),
	LATERAL (SELECT FROM access_tokens t WHERE t.token_hash = h.token_hash LIMIT 1) AS hit)`
)

// RegistrationTokens projects registration tokens and their use counts.
type RegistrationTokens struct{}

// Name implements Projector.
func (RegistrationTokens) Name() string { return "registration_tokens" }

// Version implements Projector.
func (RegistrationTokens) Version() int { return 1 }

// Tables implements Projector.
func (RegistrationTokens) Tables() []string { return []string{"registration_tokens"} }

// Handles implements Projector.
func (RegistrationTokens) Handles(t string) bool {
	switch t {
	case eventlog.TypeRegistrationTokenCreated, eventlog.TypeRegistrationTokenUsed, eventlog.TypeRegistrationTokenRevoked,
		eventlog.TypeRegistrationTokenUpdated:
		return true
	}
	return false
}

// Apply implements Projector.
func (RegistrationTokens) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	q := projdb.New()
	for _, e := range events {
		var err error
		switch e.Type {
		case eventlog.TypeRegistrationTokenCreated:
			var d eventlog.RegistrationTokenCreated
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenCreate(ctx, &b, projdb.RegistrationTokenCreateParams{
					Token: d.Token, UsesAllowed: d.UsesAllowed, ExpiryTime: d.ExpiryTime,
				})
			}
		case eventlog.TypeRegistrationTokenUsed:
			var d eventlog.RegistrationTokenUsed
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenCompleted(ctx, &b, d.Token)
			}
		case eventlog.TypeRegistrationTokenUpdated:
			var d eventlog.RegistrationTokenUpdated
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenUpdated(ctx, &b, projdb.RegistrationTokenUpdatedParams{
					Token: d.Token, UsesAllowed: d.UsesAllowed, ExpiryTime: d.ExpiryTime,
				})
			}
		case eventlog.TypeRegistrationTokenRevoked:
			var d eventlog.RegistrationTokenRevoked
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenRevoked(ctx, &b, d.Token)
			}
		}
		if err != nil {
			return fmt.Errorf("registration tokens: %w", err)
		}
	}
	return b.Send(ctx, tx)
}

// All returns every projector Spelt runs for the server serverName.
func All(serverName string) []Projector {
	return []Projector{Accounts{}, RegistrationTokens{}, Threepids{}, NewRooms(serverName), Filters{}, AccountData{}, Presence{}, Receipts{},
		ToDevice{}, E2EKeys{}, Profiles{}}
}
