#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust auth:
# the machine's own if it runs, else the installed cluster started, else one
# installed from Debian's packages.
set -euo pipefail
ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if command -v pg_isready >/dev/null && ready; then
  echo "PostgreSQL is up"; exit 0
fi
if ! command -v pg_ctlcluster >/dev/null; then
  echo "installing PostgreSQL from Debian packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
ver=$(ls /etc/postgresql | sort -V | tail -1)
if [ ! -d "/etc/postgresql/$ver/main" ]; then
  pg_createcluster "$ver" main
fi
conf=/etc/postgresql/$ver/main
# Trust auth on loopback, as the tests expect.
if ! grep -q "evistream-ci" "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust # evistream-ci\nhost all all ::1/128 trust # evistream-ci\nlocal all all trust # evistream-ci' "$conf/pg_hba.conf"
fi
pg_ctlcluster --skip-systemctl-redirect "$ver" main start || pg_ctlcluster --skip-systemctl-redirect "$ver" main restart
for _ in $(seq 1 30); do ready && { echo "PostgreSQL started"; exit 0; }; sleep 1; done
echo "PostgreSQL did not start" >&2; exit 1
