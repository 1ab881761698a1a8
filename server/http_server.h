#pragma once
// HttpServer: civetweb on its own port serving /metrics (Prometheus text format), /healthz,
// /readyz, the web page at / (server/web/, compiled in; see server/web_assets.h) and the
// read-only JSON API /api/v1/sweeps, /api/v1/sweeps/{id}, /api/v1/sweeps/{id}/trials,
// /api/v1/sweeps/{id}/grid, /api/v1/trials/{id}, /api/v1/trials/{id}/metrics and
// /api/v1/workers. The JSON bodies are the gRPC answers
// printed by protobuf's JSON mapping (original field names), so both APIs give the same data.
// With tokens on, /api/v1 needs a viewer (or admin) bearer token. Owns the civetweb context;
// borrows the rest. Handlers run on civetweb's threads and only call thread-safe objects.
// With a TLS context the port serves HTTPS only: civetweb then listens on 127.0.0.1 (a free port)
// behind an HttpsFront on `listen` (server/https_front.h), since Debian's civetweb cannot do TLS.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/auth.h"
#include "server/coordinator.h"
#include "server/metrics.h"
#include "server/tls_context.h"

struct mg_context;
struct mg_connection;

namespace wrpn::server {

class HttpsFront;

class HttpServer {
 public:
  // `listen` is host:port (port 0 picks a free one). `tls` null: plain HTTP.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& listen, Coordinator* coordinator, const Authenticator* auth,
      MetricsRegistry* registry, std::function<bool()> ready,
      std::shared_ptr<const TlsServerContext> tls = nullptr);
  ~HttpServer();
  int port() const;
  bool tls() const { return front_ != nullptr; }

 private:
  HttpServer() = default;
  static int Dispatch(mg_connection* conn, void* self);
  void Serve(mg_connection* conn);
  void ServeTrialsAndWorkers(mg_connection* conn, const std::vector<std::string>& parts);

  mg_context* ctx_ = nullptr;
  std::unique_ptr<HttpsFront> front_;  // null for plain HTTP
  std::string host_;  // where the destructor connects to wake civetweb's listener
  int port_ = 0;      // civetweb's
  Coordinator* coordinator_ = nullptr;
  const Authenticator* auth_ = nullptr;
  MetricsRegistry* registry_ = nullptr;
  std::function<bool()> ready_;
};

}  // namespace wrpn::server
