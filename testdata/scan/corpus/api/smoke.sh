#!/bin/sh
curl -fsS -H "Authorization: Basic iOY62aPmC7RSh2NPExA6eGgbHDTZBFCr" https://status.acme.io/api/health
curl -fsS -H "Authorization: Bearer $STATUS_TOKEN" https://status.acme.io/api/ready
curl -fsS -H "X-Api-Key: $API_KEY" https://status.acme.io/api/live
