#!/usr/bin/env bash
# Redis credentials and addresses: a Redis 7 ACL user with a password
# file works; a wrong password, an unknown user, no password where one
# is needed and an unreachable Redis each give one clear line, and the
# filter serves anyway (refuses with shadow-redis-required=true).  Bad
# values of the Redis parameters stop nbdkit with one line.  The
# password is never in a log.
source ./functions.sh
source ./redis-functions.sh
requires nbdsh --version

head -c $((4 * 1024 * 1024)) /dev/urandom > "$tmpdir/src.img"
start_server src -r file "$tmpdir/src.img"
start_redis r --requirepass 'default-Pw-1'
rcli r -a 'default-Pw-1' --no-auth-warning ACL SETUSER shadow on '>Sh4dow-pw' \
    '~nbdshadow:*' '+@all' >/dev/null
printf 'Sh4dow-pw\n' > "$tmpdir/pw"
printf 'not-the-password\n' > "$tmpdir/badpw"
printf 'default-Pw-1\n' > "$tmpdir/defpw"
addr=unix:$tmpdir/r.redis
arcli () { rcli r --user shadow --pass Sh4dow-pw --no-auth-warning "$@"; }

# The ACL user, and the default user with a password only.
start_shadow ok src shadow-redis=$addr shadow-id=ok shadow-policy=none \
    shadow-redis-user=shadow shadow-redis-password-file="$tmpdir/pw"
start_shadow def src shadow-redis=$addr shadow-id=def shadow-policy=none \
    shadow-redis-password-file="$tmpdir/defpw"
for v in ok def; do
    for _ in $(seq 50); do
        [ "$(arcli HGET "nbdshadow:{$v}:info" id)" = $v ] && break
        sleep 0.1
    done
    test "$(arcli HGET "nbdshadow:{$v}:info" id)" = $v
done

# expect_one_line NAME WORDS: the filter NAME serves, and its log has
# exactly one line saying WORDS, even after it retried a while.
expect_one_line ()
{
    nbdsh -u "$(uri $1)" -c 'assert len(h.pread(4096, 0)) == 4096'
    sleep 2.5
    grep -F "$2" "$tmpdir/$1.log" || { cat "$tmpdir/$1.log"; exit 1; }
    test "$(grep -c -F "$2" "$tmpdir/$1.log")" -eq 1
    test "$(grep -c shadow-redis "$tmpdir/$1.log")" -eq 1
}

start_shadow wrong src shadow-redis=$addr shadow-id=w shadow-policy=none \
    shadow-redis-user=shadow shadow-redis-password-file="$tmpdir/badpw"
expect_one_line wrong "AUTH as user 'shadow' refused: WRONGPASS"
start_shadow nouser src shadow-redis=$addr shadow-id=u shadow-policy=none \
    shadow-redis-user=nobody shadow-redis-password-file="$tmpdir/pw"
expect_one_line nouser "AUTH as user 'nobody' refused: WRONGPASS"
start_shadow nopw src shadow-redis=$addr shadow-id=n shadow-policy=none
expect_one_line nopw "refused without a password: NOAUTH"
start_shadow gone src shadow-redis=unix:$tmpdir/none.redis shadow-id=g \
    shadow-policy=none
expect_one_line gone "redis unix:$tmpdir/none.redis: cannot connect: No such file or directory"
port=$(free_ports 1)
start_shadow gone_tcp src shadow-redis=tcp:127.0.0.1:$port shadow-id=g \
    shadow-policy=none
expect_one_line gone_tcp "redis 127.0.0.1:$port: cannot connect: Connection refused"

# refuses LOG WORDS PARAMS...: nbdkit does not start, saying WORDS once.
refuses ()
{
    local log="$tmpdir/$1.log" words="$2"; shift 2
    nbdkit_refuses "$log" -U "$tmpdir/refused.sock" --filter="$FILTER" \
        nbd socket="$tmpdir/src.sock" shadow-file="$tmpdir/refused.img" \
        shadow-policy=none "$@"
    grep -F "$words" "$log" || { cat "$log"; exit 1; }
    test "$(grep -c -F "$words" "$log")" -eq 1
    rm -f "$tmpdir/refused.img" "$tmpdir/refused.img.state"
}
refuses req "AUTH as user 'shadow' refused: WRONGPASS" shadow-redis=$addr \
    shadow-id=q shadow-redis-user=shadow shadow-redis-password-file="$tmpdir/badpw" \
    shadow-redis-required=true
refuses req2 "cannot connect: Connection refused" \
    shadow-redis=tcp:127.0.0.1:$port shadow-id=q shadow-redis-required=true
refuses addr "shadow-redis: 'localhost:6379' is not an address" \
    shadow-redis=localhost:6379 shadow-id=q
refuses url "a redis:// address must not hold a user or password" \
    shadow-redis=redis://u:Url-pw-9@localhost shadow-id=q
refuses id "shadow-id: 'a b' is not 1 to 64 of" shadow-redis=$addr \
    shadow-id='a b'
refuses noid "shadow-redis needs shadow-id" shadow-redis=$addr
refuses nouser "a Redis user needs a password file" shadow-redis=$addr \
    shadow-id=q shadow-redis-user=shadow
refuses noredis "shadow-redis-password-file needs shadow-redis" \
    shadow-redis-password-file="$tmpdir/pw"
refuses nofile "password file $tmpdir/nothere:" shadow-redis=$addr \
    shadow-id=q shadow-redis-password-file="$tmpdir/nothere"
refuses bool "shadow-redis-required: 'maybe' is not true or false" \
    shadow-redis=$addr shadow-id=q \
    shadow-redis-required=maybe

# The passwords are in no log.
! grep -r -e Sh4dow-pw -e default-Pw-1 -e not-the-password -e Url-pw-9 \
    "$tmpdir"/*.log
