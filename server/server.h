#pragma once
// CoordinatorServer: the network side of a running coordinator: the gRPC server (both services,
// optional TLS), the HTTP endpoint (/metrics, /healthz, /readyz, /api/v1; HTTPS with the same
// certificate and key as gRPC unless http_plain) and a ticker thread
// that expires leases. Owns those; borrows the Coordinator, Authenticator and registry, which
// must outlive it. Start/Shutdown from one thread.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/grpc_limits.h"
#include "server/auth.h"
#include "server/coordinator.h"
#include "server/metrics.h"

namespace grpc {
class Server;
}

namespace wrpn::server {

class HttpServer;
class CoordinatorServiceImpl;
class WorkerServiceImpl;
struct RpcMetrics;

struct ServerOptions {
  std::string grpc_listen = "127.0.0.1:7070";  // host:port; port 0 picks a free one
  std::string http_listen = "127.0.0.1:8080";  // "" = no HTTP endpoint
  std::string tls_cert, tls_key;               // PEM files; both or neither
  bool http_plain = false;  // with tls_cert/tls_key: HTTP stays plain (TLS ends in front of it)
  bool allow_unauthenticated = false;          // allow a non-loopback listen without tokens
  std::chrono::milliseconds tick_interval{1000};  // 0 = no ticker (tests call Tick)
  // A larger request is refused with RESOURCE_EXHAUSTED before it is read (common/grpc_limits.h).
  int max_receive_message_bytes = kGrpcMaxRequestBytes;
  int max_send_message_bytes = kGrpcMaxResponseBytes;
};

// True for 127.0.0.0/8, ::1 and localhost.
bool IsLoopbackAddress(const std::string& host_port);

class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(Coordinator* coordinator,
                                                                  const Authenticator* auth,
                                                                  MetricsRegistry* registry,
                                                                  const ServerOptions& options);
  ~CoordinatorServer();
  int grpc_port() const { return grpc_port_; }
  int http_port() const;
  bool http_tls() const;
  // Stops accepting calls, waits up to `grace` for in-flight ones, stops HTTP and the ticker.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

 private:
  CoordinatorServer() = default;
  Coordinator* coordinator_ = nullptr;
  std::unique_ptr<RpcMetrics> rpc_metrics_;
  std::unique_ptr<CoordinatorServiceImpl> client_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HttpServer> http_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stop_{false};
  std::thread ticker_;
  int grpc_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace wrpn::server
