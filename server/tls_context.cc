#include "server/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace wrpn::server {
namespace {

// OpenSSL's queued errors as one line (and the queue emptied), or "" when there are none.
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out;
}

absl::Status Unreadable(const char* flag, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(flag, ": cannot read '", path, "': ", std::strerror(errno)));
  }
  std::fclose(f);
  return absl::OkStatus();
}

// An encrypted key would make OpenSSL prompt on the terminal; refuse it instead.
int NoPassphrase(char*, int, int, void*) { return 0; }

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsServerContext>> TlsServerContext::Load(
    const std::string& cert_path, const std::string& key_path) {
  if (cert_path.empty() || key_path.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (absl::Status s = Unreadable("--tls-cert", cert_path); !s.ok()) return s;
  if (absl::Status s = Unreadable("--tls-key", key_path); !s.ok()) return s;
  std::shared_ptr<TlsServerContext> t(new TlsServerContext());
  ERR_clear_error();
  t->ctx_ = SSL_CTX_new(TLS_server_method());
  if (t->ctx_ == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a TLS context: ", OpenSslErrors()));
  }
  SSL_CTX_set_min_proto_version(t->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_options(t->ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_default_passwd_cb(t->ctx_, &NoPassphrase);
  auto Mismatch = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key: '", key_path, "' does not belong to the certificate in '",
                     cert_path, "' (", OpenSslErrors(), ")"));
  };
  if (SSL_CTX_use_certificate_chain_file(t->ctx_, cert_path.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-cert: '", cert_path, "' is not a PEM certificate chain (", OpenSslErrors(), ")"));
  }
  if (SSL_CTX_use_PrivateKey_file(t->ctx_, key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) return Mismatch();
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key: '", key_path,
                     "' is not an unencrypted PEM private key (", OpenSslErrors(), ")"));
  }
  if (SSL_CTX_check_private_key(t->ctx_) != 1) return Mismatch();
  return std::shared_ptr<const TlsServerContext>(std::move(t));
}

TlsServerContext::~TlsServerContext() { SSL_CTX_free(ctx_); }

}  // namespace wrpn::server
