#pragma once
// TlsServerContext: an OpenSSL server context (TLS 1.2 or later) holding the coordinator's PEM
// certificate chain and private key, the same files gRPC serves (--tls-cert, --tls-key). Loading
// checks both files and that they belong together, so a bad file is reported at start-up, naming
// it. Immutable after Load; SSL_CTX is safe to share between threads for creating connections.
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct ssl_ctx_st;

namespace wrpn::server {

class TlsServerContext {
 public:
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const TlsServerContext>> Load(
      const std::string& cert_path, const std::string& key_path);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  ssl_ctx_st* get() const { return ctx_; }

 private:
  TlsServerContext() = default;
  ssl_ctx_st* ctx_ = nullptr;
};

}  // namespace wrpn::server
