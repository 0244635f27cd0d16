package store

import (
	"database/sql"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// defaultDSN is used when DATABASE_URL is not set (local development only).
const defaultDSN = "postgres://postgres:postgres@localhost:5432/app?sslmode=disable"

// reportingDSN reaches the read replica.
const reportingDSN = "postgres://reporting:g0ypnmYLvSEotwqmT6nIW5@replica-1.db.acme.internal:5432/orders?sslmode=verify-full"

func Open() (*sql.DB, error) {
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		dsn = defaultDSN
	}
	return sql.Open("pgx", dsn)
}
