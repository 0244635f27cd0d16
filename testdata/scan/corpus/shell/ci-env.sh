#!/usr/bin/env bash
# Source this in CI. Values come from the CI secret store.
export NPM_TOKEN="${NPM_TOKEN}"
export GITHUB_TOKEN="$(gh auth token)"
export DATABASE_URL="postgres://ci:${PGPASSWORD}@localhost:5432/ci"
export API_KEY=$(vault kv get -field=api_key secret/ci)
export SENTRY_DSN="https://bc44ec6f0d94b104d1d624f820a858e3@o850573.ingest.sentry.io/1759204"
