package postgres

// ListenerPID is the backend pid of the change listener's session, 0
// while it is down: tests end that session.
func (db *DB) ListenerPID() uint32 {
	if db.listener == nil {
		return 0
	}
	return db.listener.pid.Load()
}
