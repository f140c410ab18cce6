#!/bin/bash
# deb_install.sh - the Debian package on this machine, end to end:
#  (1) contrib/build-deb.sh builds portcullis_*.deb from this source tree
#      ("make dist", contrib/debian, dpkg-buildpackage); lintian reports
#      no error on the .deb and the .changes;
#  (2) "apt-get install ./portcullis_*.deb": the daemon in /usr/sbin, the
#      conffiles, the manuals, the unit (systemd-analyze verify clean), the
#      system user, /var/lib/portcullis and /run/portcullis 0750; the
#      installed "portcullis test" passes the shipped policy's cases;
#  (3) the daemon started the way the unit starts it (its ExecStartPre and
#      ExecStart lines, as its User= with no new privileges and its UMask)
#      with the packaged config and policy, untouched; one message through
#      real Postfix, attached by contrib/postfix-main.cf.snippet verbatim
#      (its own address, 127.0.0.1:8895), arrives tagged and with an
#      Authentication-Results header; the unit's ExecReload reloads;
#  (4) "apt-get purge": the daemon is stopped by the package (no systemd
#      here: prerm stops what the pidfile names), nothing of it is left
#      running or on disk but the system user, which Debian leaves (the
#      test removes it when it made it).
# The client is 192.0.2.10 by Postfix's XCLIENT: the shipped policy trusts
# 127.0.0.0/8 and would accept local mail untouched.  The packaged config
# uses the system resolver; the daemon runs in a mount namespace whose
# /etc/resolv.conf names a loopback address where no server listens, so no
# query leaves the machine (names under .test are answered by libunbound
# itself; blocklist lookups fail, and the shipped policy does not refuse
# mail for that).  Its greylisting is passed the way an administrator
# would, "portcullis greylist allow --network" as the daemon's user.
#
# Skipped (visibly) when not root, without dpkg-buildpackage and debhelper,
# when a portcullis package is installed already (it is never touched), and
# when PORTCULLIS_SKIP_DEB says why (contrib/test.sh: it runs once, in the
# first build, not again under ASan or in distcheck: the package is built
# from the source, whatever this build's configuration).  Takes minutes:
# most of it is the package build.
: "${TEST_TIMEOUT:=1800}"
export TEST_TIMEOUT
. "$(dirname "$0")/lib.sh"

[ -z "${PORTCULLIS_SKIP_DEB:-}" ] || skip_all "$PORTCULLIS_SKIP_DEB"
[ "$(id -u)" -eq 0 ] || skip_all "needs root to install a package"
command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null ||
	skip_all "dpkg-buildpackage or debhelper not installed (test packages of contrib/debian-packages)"
command -v lintian >/dev/null || skip_all "lintian not installed (a test package of contrib/debian-packages)"
if dpkg-query -W -f='${db:Status-Status}' portcullis 2>/dev/null | grep -qv '^not-installed$'; then
	skip_all "a portcullis package is installed on this machine already: not touching it"
fi
port_free 8895 || skip_all "port 8895 (the packaged config's) is in use"

CONF=/etc/portcullis/portcullis.conf
UNIT=/lib/systemd/system/portcullis.service
user_existed=
id portcullis >/dev/null 2>&1 && user_existed=1

# Whatever happens, the machine is left as it was: package purged, the
# user removed when this test made it.
_deb_cleanup() {
	if dpkg-query -W -f='${db:Status-Status}' portcullis 2>/dev/null | grep -qv '^not-installed$'; then
		[ -n "${PORTCULLIS_PID:-}" ] && stop_pid "$PORTCULLIS_PID" TERM 100
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q portcullis >"$TEST_TMP/cleanup-purge.log" 2>&1 ||
			dpkg --purge portcullis >>"$TEST_TMP/cleanup-purge.log" 2>&1
	fi
	if [ -z "$user_existed" ] && id portcullis >/dev/null 2>&1; then
		deluser --quiet --system portcullis >/dev/null 2>&1 || userdel portcullis
		getent group portcullis >/dev/null && groupdel portcullis
	fi
}
at_cleanup _deb_cleanup

# ------------------------------------------------------------ (1) build
OUT=$TEST_TMP/deb
# its scratch tree under ours: removed (or kept, KEEP_TMP) with it
if ! TMPDIR=$TEST_TMP "$abs_top_srcdir/contrib/build-deb.sh" "$OUT" >"$TEST_TMP/build.log" 2>&1; then
	diag_file "$TEST_TMP/build.log" 60
	bail_out "contrib/build-deb.sh failed"
fi
pass "contrib/build-deb.sh built $(cd "$OUT" && echo portcullis_*.deb)"
deb=$(echo "$OUT"/portcullis_*_*.deb)
changes=$(echo "$OUT"/portcullis_*.changes)
ok "one .deb and one .changes" test -f "$deb" -a -f "$changes"
like "$(grep -E '^(PASS|FAIL|ERROR|# (TOTAL|PASS|FAIL|ERROR)):' "$TEST_TMP/build.log" | tail -n 6)" \
	"# FAIL: +0" "the package build ran the unit tests, none failed"

lintian --fail-on error --display-level '>=warning' "$changes" >"$TEST_TMP/lintian.log" 2>&1
rc=$?
is "$rc" 0 "lintian --fail-on error on the .changes (.deb included)" || diag_file "$TEST_TMP/lintian.log"
is "$(grep -c '^E: ' "$TEST_TMP/lintian.log")" 0 "lintian: no error" || diag_file "$TEST_TMP/lintian.log"
[ -s "$TEST_TMP/lintian.log" ] && diag "lintian said:" "$(cat "$TEST_TMP/lintian.log")"

# ------------------------------------------------------------ (2) install
# The MTA packages first (a download under lib.sh's lock), then dpkg's
# lock waited for, not fought over.
fetch_mtas
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
	"$deb" >"$TEST_TMP/install.log" 2>&1; then
	diag_file "$TEST_TMP/install.log"
	bail_out "apt-get install $deb failed"
fi
pass "apt-get install ./$(basename "$deb")"
is "$(dpkg-query -W -f='${db:Status-Status}' portcullis)" installed "dpkg says installed"
like "$(/usr/sbin/portcullis -V)" "^portcullis [0-9]" "/usr/sbin/portcullis -V"
ok "no /usr/bin/portcullis (a daemon goes to sbin)" test ! -e /usr/bin/portcullis
conffiles=$(dpkg-query -W -f='${Conffiles}' portcullis | awk '{ print $1 }' | sort | tr '\n' ' ')
is "$conffiles" "/etc/portcullis/policy.rules /etc/portcullis/portcullis.conf " "config and policy are conffiles"
is "$(stat -c '%a %U %G' $CONF /etc/portcullis/policy.rules | sort -u)" "644 root root" "config and policy: 0644 root:root"
ok "the packaged policy is rules/default.policy" cmp "$abs_top_srcdir/rules/default.policy" /etc/portcullis/policy.rules
like "$(grep -E '^(socket|user|pidfile)[[:space:]]*=' $CONF | tr -s ' ' | tr '\n' ';')" \
	'^socket = inet:8895@127\.0\.0\.1;user = portcullis;pidfile = /run/portcullis/portcullis\.pid;$' \
	"packaged config: socket inet:8895@127.0.0.1 (the Postfix snippet's), user portcullis, pidfile in /run/portcullis"
for m in portcullis.8 portcullis.conf.5 portcullis.policy.5; do
	ok "manual $m installed and renders without warnings" \
		eval "[ -z \"\$(man --warnings -l /usr/share/man/man${m##*.}/$m.gz 2>&1 >/dev/null)\" ]"
done
ok "the unit is installed" test -f "$UNIT"
out=$(systemd-analyze verify "$UNIT" 2>&1)
is "$out" "" "systemd-analyze verify on the installed unit: clean"
ok "the unit is enabled (multi-user.target.wants)" test -L /etc/systemd/system/multi-user.target.wants/portcullis.service
pw=$(getent passwd portcullis)
like "$pw" '^portcullis:x:[0-9]+:[0-9]+:portcullis mail filter,*:/var/lib/portcullis:/usr/sbin/nologin$' \
	"system user portcullis: home /var/lib/portcullis, no login shell"
pu=$(id -u portcullis)
ok "its uid ($pu) is a system uid" test "$pu" -lt 1000
is "$(id -gn portcullis)" portcullis "its group is portcullis"
is "$(stat -c '%a %U %G' /var/lib/portcullis)" "750 portcullis portcullis" "/var/lib/portcullis: 0750 portcullis:portcullis (postinst)"
is "$(stat -c '%a %U %G' /run/portcullis)" "750 portcullis portcullis" "/run/portcullis: 0750 portcullis:portcullis (tmpfiles.d)"
out=$(/usr/sbin/portcullis -n 2>&1)
is "$?:$out" "0:" "portcullis -n on the packaged files (default config path), as root"
out=$(setpriv --reuid=portcullis --regid=portcullis --init-groups /usr/sbin/portcullis -n -c $CONF 2>&1)
is "$?:$out" "0:" "portcullis -n as the portcullis user"
out=$(/usr/sbin/portcullis test -c /usr/share/portcullis/tests/portcullis.conf /usr/share/portcullis/tests 2>&1)
rc=$?
like "$(tail -n 1 <<<"$out")" '^[1-9][0-9]* passed, 0 failed$' "installed 'portcullis test' passes the shipped policy's cases" ||
	diag "$out"
is "$rc" 0 "... and exits 0"

# ------------------------------------------------------------ (3) run, deliver
# unit_lines KEY: the command lines of KEY= in the installed unit
unit_lines() { sed -n "s/^$1=//p" "$UNIT"; }
start_cmd=$(unit_lines ExecStart)
pre_cmd=$(unit_lines ExecStartPre)
unit_user=$(unit_lines User)
unit_group=$(unit_lines Group)
unit_umask=$(unit_lines UMask)
is "$start_cmd" "/usr/sbin/portcullis -f -c $CONF" "the unit's ExecStart runs the packaged config in the foreground"
is "$unit_user:$unit_group" "portcullis:portcullis" "the unit runs as portcullis:portcullis"

# as systemd would: the unit's user and group, no new privileges, its
# umask; a private /etc/resolv.conf (see the header)
echo "nameserver 127.0.1.53" >"$TEST_TMP/resolv.conf"
cat >"$TEST_TMP/as-unit" <<EOF
#!/bin/sh
# runs "\$@" as the unit runs its commands
umask $unit_umask
exec unshare --mount --propagation private sh -c 'mount --bind "\$0" /etc/resolv.conf && exec setpriv --reuid=$unit_user --regid=$unit_group --init-groups --no-new-privs "\$@"' "$TEST_TMP/resolv.conf" "\$@"
EOF
chmod 0755 "$TEST_TMP/as-unit"
# shellcheck disable=SC2086
out=$("$TEST_TMP/as-unit" $pre_cmd 2>&1)
is "$?:$out" "0:" "the unit's ExecStartPre ($pre_cmd) passes"

# The daemon's greylisting passes the client network, as an administrator
# allows a known sender (as the daemon's user: the store is its).
out=$("$TEST_TMP/as-unit" /usr/sbin/portcullis greylist -c $CONF allow --network 192.0.2.0/24 2>&1)
is "$?" 0 "portcullis greylist allow --network 192.0.2.0/24 as portcullis" || diag "$out"

# start_portcullis runs "$PORTCULLIS -f -c CONF": here the unit's line
PORTCULLIS_WRAP=$TEST_TMP/unit-exec
cat >"$PORTCULLIS_WRAP" <<EOF
#!/bin/sh
exec "$TEST_TMP/as-unit" $start_cmd
EOF
chmod 0755 "$PORTCULLIS_WRAP"
PORTCULLIS=$PORTCULLIS_WRAP start_portcullis "$CONF"
dpid=$PORTCULLIS_PID
is "$(readlink "/proc/$dpid/exe")" /usr/sbin/portcullis "the running daemon is the installed /usr/sbin/portcullis"
is "$(stat -c '%U' "/proc/$dpid")" portcullis "it runs as portcullis"
ok "it listens on 127.0.0.1:8895" port_listening 8895 127.0.0.1
ok "its pidfile names it" poll 50 0.1 eval "[ \"\$(cat /run/portcullis/portcullis.pid 2>/dev/null)\" = $dpid ]"
ok "the greylist store is in /var/lib/portcullis" test -f /var/lib/portcullis/greylist/data.mdb
is "$(stat -c '%a %U' /var/lib/portcullis/greylist)" "750 portcullis" "greylist store directory: 0750 portcullis"

start_sink
# The snippet verbatim: start_postfix replaces inet:127.0.0.1:8895 by the
# socket given, here the same address.  XCLIENT lets the test be a client
# from outside; example.org is the shipped policy's internal domain.
POSTFIX_MAIN_CF_EXTRA="smtpd_authorized_xclient_hosts = 127.0.0.0/8
relay_domains = example.org"
start_postfix "inet:8895@127.0.0.1"
missing=$(grep -vxF -f "$PF_DIR/conf/main.cf" "$CONTRIB_DIR/postfix-main.cf.snippet")
is "$missing" "" "every line of contrib/postfix-main.cf.snippet is in Postfix's main.cf"
ok "main.cf: smtpd_milters = inet:127.0.0.1:8895" grep -qxF "smtpd_milters = inet:127.0.0.1:8895" "$PF_DIR/conf/main.cf"

printf 'From: alice@sender.test\r\nTo: bob@example.org\r\nSubject: hello from outside\r\nX-Test-Id: deb-1\r\n\r\nDelivered by the installed package.\r\n' \
	>"$TEST_TMP/msg.eml"
send "$PORT_POSTFIX" --xclient-addr 192.0.2.10 --helo mail.sender.test \
	--from alice@sender.test --to bob@example.org --data "@$TEST_TMP/msg.eml"
is "$SEND_CODE" 250 "Postfix accepts the message ($SEND_REPLY)" || { diag_send; diag_file "$PORTCULLIS_LOG"; }
if f=$(sent_message deb-1 60); then
	pass "the message arrived at the sink"
	ar=$(header_of "$f" Authentication-Results)
	like "$ar" "^$(hostname | sed 's/\./\\./g'); spf=none smtp\.mailfrom=alice@sender\.test smtp\.helo=mail\.sender\.test; dkim=none; dmarc=none header\.from=sender\.test$" \
		"it carries the daemon's Authentication-Results header"
	is "$(header_of "$f" Subject)" "[EXTERNAL] hello from outside" "its Subject is tagged [EXTERNAL] by the shipped policy"
else
	fail "the message arrived at the sink"
	fail "it carries the daemon's Authentication-Results header"
	fail "its Subject is tagged [EXTERNAL] by the shipped policy"
	diag_file "$PORTCULLIS_LOG"
	diag "$(postfix_log | tail -n 20)"
fi
like "$(cat "$PORTCULLIS_LOG")" "client=192\.0\.2\.10 mail_from=<alice@sender\.test>.* action=accept rule=default stage=eom" \
	"the daemon's log line: accepted by the default at end of message"

# the unit's ExecReload lines: a check, then SIGHUP to the main pid
reload_ok=0
while IFS= read -r cmd; do
	cmd=${cmd//\$MAINPID/$dpid}
	# shellcheck disable=SC2086
	"$TEST_TMP/as-unit" $cmd >>"$TEST_TMP/reload.log" 2>&1 || reload_ok=1
done < <(unit_lines ExecReload)
is "$reload_ok" 0 "the unit's ExecReload lines succeed" || diag_file "$TEST_TMP/reload.log"
ok "the daemon reloaded" poll 100 0.1 grep -q "reloaded $CONF and /etc/portcullis/policy.rules" "$PORTCULLIS_LOG"

# ------------------------------------------------------------ (4) purge
if DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=300 portcullis \
	>"$TEST_TMP/purge.log" 2>&1; then
	pass "apt-get purge portcullis"
else
	fail "apt-get purge portcullis"
	diag_file "$TEST_TMP/purge.log"
fi
ok "the package stopped the daemon" poll 50 0.1 pid_gone "$dpid"
wait "$dpid" 2>/dev/null
PORTCULLIS_PID=
ok "nothing listens on 8895 any more" port_closed 8895 127.0.0.1
left=$(ps -eo pid=,comm= | awk '$2 == "portcullis"')
is "$left" "" "no portcullis process is left"
# a purged package is unknown to dpkg, or known as not-installed
st=$(dpkg-query -W -f='${db:Status-Status}' portcullis 2>/dev/null)
like "${st:-unknown}" '^(unknown|not-installed)$' "dpkg: the package is gone (purged)"
for p in /usr/sbin/portcullis /etc/portcullis /var/lib/portcullis /run/portcullis \
	"$UNIT" /etc/systemd/system/multi-user.target.wants/portcullis.service \
	/usr/lib/tmpfiles.d/portcullis.conf /usr/share/portcullis; do
	ok "purge removed $p" test ! -e "$p" -a ! -L "$p"
done
is "$(id -un portcullis 2>/dev/null)" portcullis "the system user stays (Debian practice)"
done_testing
