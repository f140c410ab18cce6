#!/bin/bash
# privileges.sh - who the daemon trusts and what it leaves behind
# (portcullis(8) PRIVILEGES AND FILE MODES):
#  (a) "portcullis -n" refuses, with FILE: and the reason, a policy, a list
#      file or a config that other users can write (world- or
#      group-writable) or that a foreign user owns; the daemon's user may
#      own the policy and lists but not the config; a proper set passes;
#  (b) a start with such a file fails and says why; a SIGHUP that finds
#      one keeps the running policy and says why;
#  (c) started by root with umask 000: the daemon runs as the configured
#      user, the unix socket is 0660 for that user, the pidfile 0644, the
#      greylist state directory 0750 and its files 0640, owned by the
#      user, and nothing it created is writable by other users.
# Needs root (chown, changing user).  TAP output.
. "$(dirname "$0")/lib.sh"

have_portcullis || skip_all "portcullis is not built ($PORTCULLIS)"
[ "$(id -u)" -eq 0 ] || skip_all "needs root to chown files and change user"

user=nobody
group=$(id -gn "$user")
other=daemon		# a third user: neither root nor the daemon's
uid=$(id -u "$user")
other_uid=$(id -u "$other")

ETC=$TEST_TMP/etc
RUN=$TEST_TMP/run
STATE=$TEST_TMP/state
mkdir -p "$ETC/lists" "$RUN" "$STATE"
# as the package makes them: the daemon's own runtime and state
# directories, 0750
chown "$user:$group" "$RUN" "$STATE"
chmod 0750 "$RUN" "$STATE"
CONF=$ETC/portcullis.conf
cat >"$CONF" <<EOF
socket         = unix:$RUN/portcullis.sock
policy         = policy.rules
authserv_id    = mx.corp.test
resolver       = 127.0.0.1:9
dnsbl_probe_interval = 0
greylist_store = lmdb:$STATE/greylist
user           = $user
pidfile        = $RUN/portcullis.pid
EOF
# policy TEXT: a policy that reads the greylist (so the daemon opens its
# store at start) and a list file.
policy() {
	cat <<EOF
# privileges.sh: $1
list blocked file "lists/blocked.txt"
greylist delay 5m window 4h expire 35d
rule blocked:  when mail_from in blocked then reject "5.7.1 $1"
rule grey:     when greylist is new then tempfail
default accept
EOF
}
policy "blocked by the first policy" >"$ETC/policy.rules"
echo "spam@bad.test" >"$ETC/lists/blocked.txt"
chmod 0644 "$CONF" "$ETC/policy.rules" "$ETC/lists/blocked.txt"

# check DESC WANT-RC REGEX: "portcullis -n" exits WANT-RC and prints a
# line matching REGEX (empty: prints nothing).
check() {
	local out rc
	out=$("$PORTCULLIS" -n -c "$CONF" 2>&1)
	rc=$?
	if [ -z "$3" ]; then
		is "$rc:$out" "$2:" "$1"
	else
		is "$rc" "$2" "$1: exit $2" && like "$out" "$3" "$1: names the file and why"
	fi
}

# ------------------------------------------------------------ (a) -n
P=$ETC/policy.rules
L=$ETC/lists/blocked.txt
check "-n on root-owned 0644 files" 0 ""

chmod 0666 "$P"
check "-n on a world-writable policy" 1 "^$P:1:1: cannot load the policy: writable by other users \(mode 0666\)$"
chmod 0664 "$P"
check "-n on a group-writable policy" 1 "^$P:1:1: cannot load the policy: writable by other users \(mode 0664\)$"
chmod 0644 "$P"

chown "$user" "$P" "$L"
check "-n on a policy and list owned by the daemon's user ($user)" 0 ""
chown "$other" "$P"
check "-n on a policy owned by another user ($other)" 1 "^$P:1:1: cannot load the policy: owned by uid $other_uid, not by root or uid $uid \(the user portcullis runs as\)$"
chown root "$P" "$L"

chmod 0620 "$L"
check "-n on a group-writable list file" 1 "^$P:2:19: list file '$L' refused: writable by other users \(mode 0620\)$"
chmod 0644 "$L"
chown "$other" "$L"
check "-n on a list file owned by another user" 1 "^$P:2:19: list file '$L' refused: owned by uid $other_uid"
chown root "$L"

chmod 0664 "$CONF"
check "-n on a group-writable config" 1 "^$CONF: refused: writable by other users \(mode 0664\)$"
chmod 0646 "$CONF"
check "-n on a world-writable config" 1 "^$CONF: refused: writable by other users \(mode 0646\)$"
chmod 0644 "$CONF"
# the config says what root does before dropping privileges (socket,
# pidfile): the daemon's user may not own it
chown "$user" "$CONF"
check "-n (as root) on a config owned by the daemon's user" 1 "^$CONF: refused: owned by uid $uid, not by root$"
chown root "$CONF"

sed "s/^user .*/user = no-such-user-here/" "$CONF" >"$ETC/nouser.conf"
out=$("$PORTCULLIS" -n -c "$ETC/nouser.conf" 2>&1)
is "$?" 1 "-n on a config naming an unknown user exits 1"
like "$out" "^$ETC/nouser.conf: unknown user 'no-such-user-here'$" "-n names the unknown user"

check "-n on the restored files" 0 ""

# ------------------------------------------------------------ (b) start, reload
chmod 0664 "$P"
"$PORTCULLIS" -f -c "$CONF" </dev/null >"$TEST_TMP/refused.log" 2>&1 &
refused_pid=$!
if wait_exit "$refused_pid" 100; then
	is "$EXIT_STATUS" 1 "a start with a group-writable policy exits 1"
else
	fail "a start with a group-writable policy exits 1" "still running"
	stop_pid "$refused_pid" KILL
fi
like "$(cat "$TEST_TMP/refused.log")" "$P:1:1: cannot load the policy: writable by other users \(mode 0664\)" \
	"the refused start says which file and why"
ok "the refused start left no socket" test ! -e "$RUN/portcullis.sock"
chmod 0644 "$P"

# ------------------------------------------------------------ (c) modes
old_umask=$(umask)
umask 000
start_portcullis "$CONF"
umask "$old_umask"
ok "the greylist store is created at start" poll 100 0.05 test -e "$STATE/greylist/data.mdb"
is "$(stat -c '%u' "/proc/$PORTCULLIS_PID")" "$uid" "the daemon runs as $user after binding"
is "$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$PORTCULLIS_PID/status")" "$uid $uid $uid $uid" \
	"real, effective, saved and filesystem uid are all $user's"
is "$(stat -c '%a %U %G' "$RUN/portcullis.sock")" "660 $user $group" "socket: 0660 $user:$group"
is "$(stat -c '%a %U' "$RUN/portcullis.pid")" "644 root" "pidfile: 0644, written by root before the drop"
is "$(stat -c '%a %U %G' "$STATE/greylist")" "750 $user $group" "greylist directory: 0750 $user:$group"
is "$(stat -c '%a %U' "$STATE/greylist/data.mdb")" "640 $user" "greylist data.mdb: 0640 $user"
is "$(stat -c '%a %U' "$STATE/greylist/lock.mdb")" "640 $user" "greylist lock.mdb: 0640 $user"
ww=$(find "$RUN" "$STATE" -perm -o+w ! -type s 2>&1; find "$RUN" "$STATE" -type s -perm -o+r 2>&1)
is "$ww" "" "with umask 000 nothing the daemon created is open to other users"

# reload with a group-writable policy: refused, the running one stays
n_failed=$(grep -c 'reload failed' "$PORTCULLIS_LOG")
policy "blocked by the second policy" >"$P.new" && chmod 0664 "$P.new" && mv -f "$P.new" "$P"
kill -HUP "$PORTCULLIS_PID"
_reload_failed() { [ "$(grep -c 'reload failed' "$PORTCULLIS_LOG")" -gt "$n_failed" ]; }
ok "SIGHUP with a group-writable policy: the reload fails" poll 100 0.1 _reload_failed
like "$(cat "$PORTCULLIS_LOG")" "$P:1:1: cannot load the policy: writable by other users \(mode 0664\)" \
	"the refused reload says which file and why"
ok "the daemon keeps running" pid_alive "$PORTCULLIS_PID"
# once the file is fixed the next reload takes it
chmod 0644 "$P"
kill -HUP "$PORTCULLIS_PID"
_reloaded() { grep -q "reloaded $CONF and $P" "$PORTCULLIS_LOG"; }
ok "SIGHUP after chmod go-w: the policy is reloaded" poll 100 0.1 _reloaded

stop_portcullis
is "$PORTCULLIS_STATUS" 0 "SIGTERM: exit 0"
ok "socket removed at exit (by the unprivileged daemon)" test ! -e "$RUN/portcullis.sock"
ok "pidfile removed at exit" test ! -e "$RUN/portcullis.pid"
done_testing
