#pragma once
// HttpsFront: TLS on the coordinator's HTTP port (issue #26). Debian bookworm's civetweb cannot
// serve TLS with OpenSSL 3 (docs/web.md), so this accepts on the HTTP address, completes the
// handshake with the gRPC certificate and key (TlsServerContext) and relays the decrypted bytes
// both ways to civetweb listening on loopback only, until either side is done. A plain-HTTP
// request on the port is answered "400 ... use https" and closed; nothing is relayed for it.
//
// Bounds: at most max_connections connections are served at once, one thread each (started on
// demand, kept for reuse); further ones wait in the listen backlog. A connection gets
// handshake_timeout to complete TLS and is closed after idle_timeout without a byte either way.
// Owns its socket and threads. The destructor stops accepting, gives open connections up to
// shutdown_grace to finish, then closes them and joins every thread.
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/tls_context.h"

namespace wrpn::server {

struct HttpsFrontOptions {
  int max_connections = 64;
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds shutdown_grace{2000};
};

class HttpsFront {
 public:
  // `listen` is host:port, [v6]:port or port (all IPv4 interfaces), as for civetweb; port 0
  // picks a free one. `backend_port` is the plain HTTP server on 127.0.0.1.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpsFront>> Start(
      const std::string& listen, std::shared_ptr<const TlsServerContext> tls, int backend_port,
      const HttpsFrontOptions& options = {});
  ~HttpsFront();
  HttpsFront(const HttpsFront&) = delete;
  HttpsFront& operator=(const HttpsFront&) = delete;

  int port() const { return port_; }

 private:
  HttpsFront() = default;
  void AcceptLoop();
  void Work();
  void Serve(int client) const;
  bool CanAccept() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasWorkOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllIdle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<const TlsServerContext> tls_;
  HttpsFrontOptions options_;
  int backend_port_ = 0;
  int port_ = 0;
  int listen_fd_ = -1;
  int accept_stop_fd_ = -1;      // eventfd: readable once the destructor stops accepting
  int connection_stop_fd_ = -1;  // eventfd: readable once open connections must end
  std::thread acceptor_;
  std::vector<std::thread> workers_;  // touched by the acceptor, then by the destructor

  mutable absl::Mutex mu_;
  std::deque<int> pending_ ABSL_GUARDED_BY(mu_);  // accepted sockets no worker took yet
  int threads_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;   // no more accepting
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // workers exit
};

}  // namespace wrpn::server
