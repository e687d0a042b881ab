#!/bin/bash
# Installs an Akutan release from its unpacked directory: the binaries into
# /usr/local/bin, the systemd units into /etc/systemd/system, the example
# environment files into /usr/local/share/akutan/env, and the system user
# akutan the units run as. Idempotent; the user data of terraform/ runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

getent group akutan >/dev/null || groupadd --system akutan
getent passwd akutan >/dev/null ||
  useradd --system --gid akutan --home-dir /var/lib/akutan --no-create-home --shell /usr/sbin/nologin akutan

install -m 0755 "${here}"/bin/* /usr/local/bin/
install -m 0755 "${here}"/systemd/akutan-discovery /usr/local/bin/
install -m 0644 "${here}"/systemd/*.service /etc/systemd/system/
install -d -m 0755 /usr/local/share/akutan/env /etc/akutan
install -m 0644 "${here}"/env/*.env /usr/local/share/akutan/env/
install -m 0644 "${here}"/VERSION /usr/local/share/akutan/VERSION
systemctl daemon-reload
