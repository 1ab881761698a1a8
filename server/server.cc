#include "server/server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/grpc_service.h"
#include "server/http_server.h"
#include "server/tls_context.h"

namespace wrpn::server {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

bool IsLoopbackAddress(const std::string& host_port) {
  std::string host = host_port;
  if (!host.empty() && host[0] == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string::npos &&
                                          host.find(':') == colon) {
    host = host.substr(0, colon);
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

namespace {

// Refuses a non-loopback listen without tokens, and half a TLS configuration.
absl::Status CheckListenOptions(const Authenticator& auth, const ServerOptions& options) {
  if (!auth.enabled() && !options.allow_unauthenticated) {
    for (const std::string* addr : {&options.grpc_listen, &options.http_listen}) {
      if (!addr->empty() && !IsLoopbackAddress(*addr)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "refusing to listen on ", *addr,
            " without a token file; give --token-file or --allow-unauthenticated"));
      }
    }
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  return absl::OkStatus();
}

// TLS credentials from --tls-cert/--tls-key, or insecure ones without them.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcCredentials(
    const ServerOptions& options) {
  if (options.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  auto key = ReadFile(options.tls_key, "TLS key");
  if (!key.ok()) return key.status();
  auto cert = ReadFile(options.tls_cert, "TLS certificate");
  if (!cert.ok()) return cert.status();
  pair.private_key = *key;
  pair.cert_chain = *cert;
  ssl.pem_key_cert_pairs.push_back(pair);
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    Coordinator* coordinator, const Authenticator* auth, MetricsRegistry* registry,
    const ServerOptions& options) {
  RETURN_IF_ERROR(CheckListenOptions(*auth, options));
  // Both files checked, naming the bad one, before anything listens; HTTPS serves them too.
  std::shared_ptr<const TlsServerContext> http_tls;
  if (!options.tls_cert.empty()) {
    auto tls = TlsServerContext::Load(options.tls_cert, options.tls_key);
    if (!tls.ok()) return tls.status();
    if (!options.http_plain) http_tls = *std::move(tls);
  }
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer());
  s->coordinator_ = coordinator;
  s->rpc_metrics_ = std::make_unique<RpcMetrics>(registry);
  s->client_service_ =
      std::make_unique<CoordinatorServiceImpl>(coordinator, auth, s->rpc_metrics_.get());
  s->worker_service_ =
      std::make_unique<WorkerServiceImpl>(coordinator, auth, s->rpc_metrics_.get());

  auto creds = GrpcCredentials(options);
  if (!creds.ok()) return creds.status();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.grpc_listen, *creds, &s->grpc_port_);
  builder.RegisterService(s->client_service_.get());
  builder.RegisterService(s->worker_service_.get());
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(options.max_send_message_bytes);
  // gRPC checks the receive limit only once a message is complete: a hostile 1 GiB request was
  // buffered whole (peak RSS 1,045 MiB) before being refused. A memory quota makes the transport
  // reset streams when its buffers pass it (peak 531 MiB for the same request; bench/scale.sh
  // --phase huge). 256 MiB bounded it further but raised p99 heartbeat latency at 5,000 workers
  // from 44 to 58 ms (memory-pressure handling); 512 MiB kept it at 44 ms.
  grpc::ResourceQuota quota("wrpn-coordinator");
  quota.Resize(512u << 20);
  builder.SetResourceQuota(quota);
  // gRPC sets SO_REUSEPORT by default: a second coordinator on the same port then started too and
  // the kernel split the connections between the two (split brain). Binding must fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  s->grpc_ = builder.BuildAndStart();
  if (!s->grpc_ || s->grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.grpc_listen,
        " (is another coordinator or program using the port?)"));
  }
  if (!options.http_listen.empty()) {
    auto http = HttpServer::Start(options.http_listen, coordinator, auth, registry,
                                  [raw = s.get()] { return raw->ready_.load(); },
                                  std::move(http_tls));
    if (!http.ok()) {
      s->grpc_->Shutdown();
      return http.status();
    }
    s->http_ = *std::move(http);
  }
  if (options.tick_interval.count() > 0) {
    s->ticker_ = std::thread([raw = s.get(), interval = options.tick_interval] {
      while (!raw->stop_.load()) {
        (void)raw->coordinator_->Tick();  // a failed write is retried on the next tick
        auto until = std::chrono::steady_clock::now() + interval;
        while (!raw->stop_.load() && std::chrono::steady_clock::now() < until)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  s->ready_ = true;
  return s;
}

int CoordinatorServer::http_port() const { return http_ ? http_->port() : 0; }
bool CoordinatorServer::http_tls() const { return http_ && http_->tls(); }

void CoordinatorServer::Shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  ready_ = false;
  coordinator_->Shutdown();  // ends WatchSweep streams
  if (grpc_) {  // null when Start failed to listen
    grpc_->Shutdown(std::chrono::system_clock::now() + grace);
    grpc_->Wait();
  }
  http_.reset();
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

}  // namespace wrpn::server
