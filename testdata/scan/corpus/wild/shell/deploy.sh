#!/bin/sh
set -eu
export DB_PASSWORD='MEvO0KJF!mLv'
export API_TOKEN=If0vtkztHYIhf6J6yX5pOsFDxNZ7Lblfl0ybV5yl
curl -u admin:lantern+7111 https://ci.acme.io/api/json
curl -H "Authorization: Basic b3BzOkRkWWhxSHRmMzR6MG93" https://registry.acme.io/v2/
mysql -h db.internal -u root -p'p1Zd0l!mDN' shop < dump.sql
docker login -u deploy -p hq4rSS+lDS registry.acme.io
sshpass -p 'thistle18granite-' ssh ops@10.0.0.12 uptime
PGPASSWORD=juniper17copper= psql -h db.internal -U app
export DB_PASSWORD="${DB_PASSWORD:?set DB_PASSWORD}"
curl -u "$USER:$PASS" https://ci.acme.io/api/json
read -rsp "Password: " password
TOKEN=$(vault kv get -field=token secret/ci)
docker login -u deploy --password-stdin registry.acme.io < token.txt
mysql -u root -p shop
