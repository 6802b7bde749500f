#!/usr/bin/env bash
# TLS to the source: a migration from a source that requires TLS, with a
# PSK (unix socket) and with X.509 certificates (TCP, host name checked);
# a plaintext source is refused when tls=require, and so is a wrong key.
source ./functions.sh
requires psktool --version
requires certtool --version
requires nbdsh --version

size=$((8 * 1024 * 1024))
head -c $size /dev/urandom > "$tmpdir/src.img"

# refused ARGS...: nbdkit with the filter must refuse to start.
refused ()
{
    rm -f "$tmpdir/ref.img" "$tmpdir/ref.img.state" "$tmpdir/ref.sock"
    if ! nbdkit_refuses "$tmpdir/ref.log" -U "$tmpdir/ref.sock" --filter="$FILTER" \
        nbd shadow-file="$tmpdir/ref.img" "$@"; then
        echo "$0: nbdkit started with: $*"; cat "$tmpdir/ref.log"; exit 1
    fi
    cat "$tmpdir/ref.log"
}

# migrate NAME SOURCE PARAMS...: full copy through a fresh shadow.
migrate ()
{
    _m="$1" _src="$2"; shift 2
    start_server "$_m" --filter="$FILTER" nbd "$@" \
        shadow-file="$tmpdir/$_m.img" shadow-stats="$tmpdir/$_m.json"
    wait_json "$tmpdir/$_m.json" state complete 60
    cmp "$tmpdir/src.img" "$tmpdir/$_m.img"
    stop_server "$_m"
}

# PSK over a unix socket.
psktool -u alice -p "$tmpdir/keys.psk" >/dev/null
start_server psk --tls=require --tls-psk="$tmpdir/keys.psk" file "$tmpdir/src.img"
migrate m_psk psk socket="$tmpdir/psk.sock" tls=require \
    tls-psk="$tmpdir/keys.psk" tls-username=alice
migrate m_psk_uri psk uri="nbds+unix://alice@/?socket=$tmpdir/psk.sock" \
    tls-psk="$tmpdir/keys.psk"
psktool -u alice -p "$tmpdir/other.psk" >/dev/null
refused socket="$tmpdir/psk.sock" tls=require tls-psk="$tmpdir/other.psk" \
    tls-username=alice

# Plaintext source: refused when TLS is required, by parameter or URI.
start_server plain file "$tmpdir/src.img"
refused socket="$tmpdir/plain.sock" tls=require tls-psk="$tmpdir/keys.psk" \
    tls-username=alice
grep -q 'TLS' "$tmpdir/ref.log"
refused uri="nbds+unix://alice@/?socket=$tmpdir/plain.sock" \
    tls-psk="$tmpdir/keys.psk"

# X.509: a CA, and a server certificate for localhost.
pki="$tmpdir/pki"; mkdir "$pki"
certtool --generate-privkey --outfile "$pki/ca-key.pem" 2>/dev/null
cat > "$pki/ca.info" <<INFO
cn = nbdshadow test CA
ca
cert_signing_key
expiration_days = 2
INFO
certtool --generate-self-signed --load-privkey "$pki/ca-key.pem" \
    --template "$pki/ca.info" --outfile "$pki/ca-cert.pem" 2>/dev/null
certtool --generate-privkey --outfile "$pki/server-key.pem" 2>/dev/null
cat > "$pki/server.info" <<INFO
organization = nbdshadow test
cn = localhost
dns_name = localhost
ip_address = 127.0.0.1
tls_www_server
encryption_key
signing_key
expiration_days = 2
INFO
certtool --generate-certificate --load-ca-certificate "$pki/ca-cert.pem" \
    --load-ca-privkey "$pki/ca-key.pem" --load-privkey "$pki/server-key.pem" \
    --template "$pki/server.info" --outfile "$pki/server-cert.pem" 2>/dev/null
# The client side needs only the CA.
mkdir "$tmpdir/client"; cp "$pki/ca-cert.pem" "$tmpdir/client/"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nbdkit -f -i 127.0.0.1 -p "$port" --tls=require \
    --tls-certificates="$pki" file "$tmpdir/src.img" >"$tmpdir/x509.log" 2>&1 &
_pids="$_pids $!"
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
migrate m_x509 x509 uri="nbds://localhost:$port/" \
    tls-certificates="$tmpdir/client"
migrate m_x509_host x509 hostname=localhost port="$port" tls=require \
    tls-certificates="$tmpdir/client"
# A CA that did not sign the server's certificate: refused.
mkdir "$tmpdir/wrongca"
certtool --generate-privkey --outfile "$tmpdir/wrongca/key.pem" 2>/dev/null
certtool --generate-self-signed --load-privkey "$tmpdir/wrongca/key.pem" \
    --template "$pki/ca.info" --outfile "$tmpdir/wrongca/ca-cert.pem" 2>/dev/null
rm "$tmpdir/wrongca/key.pem"
refused uri="nbds://localhost:$port/" tls-certificates="$tmpdir/wrongca"
