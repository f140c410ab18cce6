#!/usr/bin/env bash
# contrib/quickstart.sh - on Debian 12: install what portcullis needs,
# build and install it (config and policy in /etc/portcullis), and start it
# with the shipped default config and policy, listening on
# inet:8895@127.0.0.1 as the system user "portcullis".  Run as root from
# the source tree:  sudo bash contrib/quickstart.sh
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2046
apt-get install -y -qq --no-install-recommends \
    $(awk '$1 == "build" { print $2 }' contrib/debian-packages) >/dev/null
autoreconf -fi
./configure -q --prefix=/usr/local --sysconfdir=/etc --localstatedir=/var
make -s -j"$(nproc)"
make -s install
id portcullis >/dev/null 2>&1 ||
    useradd --system --home-dir /var/lib/portcullis --shell /usr/sbin/nologin portcullis
install -d -o portcullis -g portcullis -m 0750 /var/lib/portcullis /run/portcullis
/usr/local/bin/portcullis -n
if [ -f /run/portcullis/portcullis.pid ] &&
    kill -0 "$(cat /run/portcullis/portcullis.pid)" 2>/dev/null; then
	kill -TERM "$(cat /run/portcullis/portcullis.pid)"
	while kill -0 "$(cat /run/portcullis/portcullis.pid 2>/dev/null)" 2>/dev/null; do
		sleep 0.2
	done
fi
/usr/local/bin/portcullis -u portcullis -P /run/portcullis/portcullis.pid
echo "portcullis $(/usr/local/bin/portcullis -V | cut -d' ' -f2) is running (pid $(cat /run/portcullis/portcullis.pid)), config /etc/portcullis/portcullis.conf"
