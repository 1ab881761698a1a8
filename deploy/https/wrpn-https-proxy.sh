#!/bin/sh
# HTTPS in front of the coordinator's HTTP port (the web page, /api/v1, /metrics), with the same
# certificate and key as its gRPC port. Debian bookworm's civetweb 1.15 cannot serve TLS itself:
# it loads libssl.so at run time and looks up SSL_get_peer_certificate, an OpenSSL 1.1 symbol
# that OpenSSL 3 (bookworm's only libssl) no longer exports, so its TLS setup fails. stunnel4
# terminates TLS instead and forwards to the plain HTTP port, which then listens only where the
# proxy reaches it (loopback, the pod, or the Compose network).
#
# Settings (environment):
#   WRPN_HTTPS_ACCEPT   address:port to serve HTTPS on       (default 0.0.0.0:8443)
#   WRPN_HTTPS_CONNECT  the coordinator's HTTP address:port  (default 127.0.0.1:8080)
#   WRPN_TLS_CERT       PEM certificate chain                (default /run/secrets/wrpn-tls-cert)
#   WRPN_TLS_KEY        PEM private key                      (default /run/secrets/wrpn-tls-key)
#   WRPN_HTTPS_CONF     where to write stunnel's config       (default a temporary file)
# Runs stunnel in the foreground (logs on stderr); SIGTERM stops it.
set -eu
accept=${WRPN_HTTPS_ACCEPT:-0.0.0.0:8443}
connect=${WRPN_HTTPS_CONNECT:-127.0.0.1:8080}
cert=${WRPN_TLS_CERT:-/run/secrets/wrpn-tls-cert}
key=${WRPN_TLS_KEY:-/run/secrets/wrpn-tls-key}
for f in "$cert" "$key"; do
  [ -r "$f" ] || { echo "wrpn-https-proxy: cannot read '$f'" >&2; exit 2; }
done
conf=${WRPN_HTTPS_CONF:-$(mktemp /tmp/wrpn-https.XXXXXX.conf)}
cat > "$conf" <<CONF
foreground = yes
pid =
syslog = no
output = /dev/stderr
debug = notice
[wrpn-https]
accept = $accept
connect = $connect
cert = $cert
key = $key
sslVersionMin = TLSv1.2
CONF
exec stunnel4 "$conf"
