# PostgreSQL: Debian's postgresql-15, its data in /data/pgdata.
KIND_VERSION=15
KIND_PORT=5432
KIND_DEFAULT_ALIAS=DATABASE
# app.json addons this kind provides, as Heroku and Dokku name them.
KIND_PLANS="heroku-postgresql dokku-postgres postgresql postgres"

kind_url() { echo "postgres://postgres:$1@$2:$KIND_PORT/$3"; }
kind_display_url() { echo "DSN: postgres://postgres:********@$1:$KIND_PORT/$2"; }
# Inside the container the socket in /tmp trusts local users: no password travels.
kind_ready() { berth containers:exec "$1" /usr/lib/postgresql/15/bin/pg_isready -q -h /tmp -U postgres; }
kind_connect() { berth containers:exec "$1" psql -h /tmp -U postgres "$2"; }
kind_export() { berth containers:exec "$1" pg_dump -h /tmp -U postgres -Fc --no-owner --no-acl "$2"; }
kind_import() { berth containers:exec "$1" pg_restore -h /tmp -U postgres -d "$2" --clean --if-exists --no-owner --no-acl --single-transaction; }
