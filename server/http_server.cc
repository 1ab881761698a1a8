#include "server/http_server.h"

#include <civetweb.h>
#include <google/protobuf/util/json_util.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "server/https_front.h"
#include "server/validate.h"
#include "server/web_assets.h"

namespace wrpn::server {
namespace {

// The gRPC edge's request validation (server/validate.h), for the JSON API's requests too.
template <typename Req, typename Fn>
auto Validated(const Req& req, Fn&& fn) -> decltype(fn()) {
  if (absl::Status v = ValidateRequest(req); !v.ok()) return v;
  return fn();
}

void Reply(mg_connection* conn, int code, const char* type, const std::string& body) {
  const char* reason = code == 200 ? "OK" : code == 400 ? "Bad Request" : code == 401
                           ? "Unauthorized" : code == 403 ? "Forbidden" : code == 404
                           ? "Not Found" : code == 405 ? "Method Not Allowed" : code == 503
                           ? "Service Unavailable" : "Internal Server Error";
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            code, reason, type, body.size());
  mg_write(conn, body.data(), body.size());
}

int HttpCode(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kFailedPrecondition: return 400;
    default: return 500;
  }
}

// The page's files: same-origin scripts and styles only, no framing, no sniffing.
void ReplyAsset(mg_connection* conn, const WebAsset& a) {
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
            "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
            "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'\r\nConnection: close\r\n\r\n",
            static_cast<int>(a.content_type.size()), a.content_type.data(), a.body.size());
  mg_write(conn, a.body.data(), a.body.size());
}

void ReplyError(mg_connection* conn, const absl::Status& s) {
  nlohmann::json body = {{"error", std::string(s.message())},
                         {"code", absl::StatusCodeToString(s.code())}};
  Reply(conn, HttpCode(s), "application/json", body.dump());
}

template <typename Msg>
void ReplyProto(mg_connection* conn, const absl::StatusOr<Msg>& r) {
  if (!r.ok()) return ReplyError(conn, r.status());
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;  // empty lists and zeros too, for JSON clients
  auto st = google::protobuf::util::MessageToJsonString(*r, &out, opts);
  if (!st.ok()) return ReplyError(conn, absl::InternalError(std::string(st.message())));
  Reply(conn, 200, "application/json", out);
}

std::string Query(const mg_request_info* ri, const char* name) {
  if (ri->query_string == nullptr) return "";
  char buf[512];
  int n = mg_get_var(ri->query_string, strlen(ri->query_string), name, buf, sizeof(buf));
  return n >= 0 ? std::string(buf, n) : "";
}

absl::StatusOr<int> QueryInt(const mg_request_info* ri, const char* name) {
  std::string v = Query(ri, name);
  if (v.empty()) return 0;
  int out;
  if (!absl::SimpleAtoi(v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": '", v, "' is not an integer"));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& listen, Coordinator* coordinator, const Authenticator* auth,
    MetricsRegistry* registry, std::function<bool()> ready,
    std::shared_ptr<const TlsServerContext> tls) {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->coordinator_ = coordinator;
  s->auth_ = auth;
  s->registry_ = registry;
  s->ready_ = std::move(ready);
  const std::string civetweb_listen = tls ? "127.0.0.1:0" : listen;
  const char* options[] = {"listening_ports", civetweb_listen.c_str(), "num_threads", "4",
                           "request_timeout_ms", "10000", nullptr};
  mg_callbacks callbacks{};
  s->ctx_ = mg_start(&callbacks, nullptr, options);
  if (s->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", civetweb_listen));
  }
  mg_set_request_handler(s->ctx_, "/", &HttpServer::Dispatch, s.get());
  mg_server_port ports[4];
  int n = mg_get_server_ports(s->ctx_, 4, ports);
  if (n < 1) return absl::UnavailableError("HTTP server has no listening port");
  s->port_ = ports[0].port;
  // The host part of "host:port", "[v6]:port" or "port"; wildcards are reached on loopback.
  std::string host;
  if (const size_t colon = civetweb_listen.rfind(':'); colon != std::string::npos)
    host = civetweb_listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  s->host_ = host;
  if (tls) {
    auto front = HttpsFront::Start(listen, std::move(tls), s->port_);
    if (!front.ok()) return front.status();
    s->front_ = *std::move(front);
  }
  return s;
}

int HttpServer::port() const { return front_ ? front_->port() : port_; }

HttpServer::~HttpServer() {
  front_.reset();  // ends the relayed connections before civetweb stops
  if (!ctx_) return;
  // civetweb's listener sees the stop flag only between polls of its socket, up to 2 s apart
  // (SOCKET_TIMEOUT_QUANTUM): a stop took 1-2 s. A connection attempt wakes it at once.
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* addrs = nullptr;
    if (getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &addrs) != 0) return;
    while (!stopped.load()) {
      const int fd = ::socket(addrs->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) {
        (void)::connect(fd, addrs->ai_addr, addrs->ai_addrlen);
        ::close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    freeaddrinfo(addrs);
  });
  mg_stop(ctx_);
  stopped = true;
  waker.join();
}

int HttpServer::Dispatch(mg_connection* conn, void* self) {
  static_cast<HttpServer*>(self)->Serve(conn);
  return 1;
}

void HttpServer::Serve(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  const std::string uri = ri->local_uri ? ri->local_uri : "";
  if (std::string(ri->request_method) != "GET") {
    return ReplyError(conn, absl::InvalidArgumentError("only GET is served here"));
  }
  if (uri == "/metrics") {
    return Reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", registry_->Render());
  }
  if (uri == "/healthz") return Reply(conn, 200, "text/plain", "ok\n");
  if (uri == "/readyz") {
    return ready_() ? Reply(conn, 200, "text/plain", "ready\n")
                    : Reply(conn, 503, "text/plain", "not ready\n");
  }
  if (std::optional<WebAsset> asset = FindWebAsset(uri)) return ReplyAsset(conn, *asset);
  std::vector<std::string> parts = absl::StrSplit(uri, '/', absl::SkipEmpty());
  if (parts.size() < 3 || parts[0] != "api" || parts[1] != "v1" ||
      (parts[2] != "sweeps" && parts[2] != "trials" && parts[2] != "workers")) {
    return ReplyError(conn, absl::NotFoundError(absl::StrCat("no such path: ", uri)));
  }
  const char* authz = mg_get_header(conn, "Authorization");
  if (absl::Status st = auth_->Check(authz ? authz : "", Role::kViewer); !st.ok()) {
    return ReplyError(conn, st);
  }
  if (parts[2] != "sweeps") return ServeTrialsAndWorkers(conn, parts);
  auto page_size = QueryInt(ri, "page_size");
  if (!page_size.ok()) return ReplyError(conn, page_size.status());
  if (parts.size() == 3) {
    pb::ListSweepsRequest req;
    req.set_page_size(*page_size);
    req.set_page_token(Query(ri, "page_token"));
    std::string state = Query(ri, "state");
    if (!state.empty()) {
      pb::SweepState s;
      if (!pb::SweepState_Parse(state, &s)) {
        return ReplyError(conn, absl::InvalidArgumentError(
                                    absl::StrCat("state: unknown sweep state '", state, "'")));
      }
      req.set_state(s);
    }
    return ReplyProto(conn, Validated(req, [&] { return coordinator_->ListSweeps(req); }));
  }
  int64_t id;
  if (!absl::SimpleAtoi(parts[3], &id)) {
    return ReplyError(conn, absl::InvalidArgumentError(
                                absl::StrCat("sweep id: '", parts[3], "' is not a number")));
  }
  if (parts.size() == 4) {
    pb::GetSweepRequest req;
    req.set_sweep_id(id);
    return ReplyProto(conn, Validated(req, [&] { return coordinator_->GetSweep(req); }));
  }
  if (parts.size() == 5 && parts[4] == "trials") {
    pb::ListTrialsRequest req;
    req.set_sweep_id(id);
    req.set_page_size(*page_size);
    req.set_page_token(Query(ri, "page_token"));
    req.set_network(Query(ri, "network"));
    std::string state = Query(ri, "state");
    if (!state.empty()) {
      pb::TrialState s;
      if (!pb::TrialState_Parse(state, &s)) {
        return ReplyError(conn, absl::InvalidArgumentError(
                                    absl::StrCat("state: unknown trial state '", state, "'")));
      }
      req.set_state(s);
    }
    return ReplyProto(conn, Validated(req, [&] { return coordinator_->ListTrials(req); }));
  }
  if (parts.size() == 5 && parts[4] == "grid") {
    pb::GetGridRequest req;
    req.set_sweep_id(id);
    req.set_paper_ref(Query(ri, "paper_ref"));
    return ReplyProto(conn, Validated(req, [&] { return coordinator_->GetGrid(req); }));
  }
  return ReplyError(conn, absl::NotFoundError(absl::StrCat("no such path: ", uri)));
}

// /api/v1/workers, /api/v1/trials/{id} and /api/v1/trials/{id}/metrics[?name=...], for the page.
void HttpServer::ServeTrialsAndWorkers(mg_connection* conn, const std::vector<std::string>& parts) {
  const mg_request_info* ri = mg_get_request_info(conn);
  if (parts[2] == "workers" && parts.size() == 3) {
    pb::ListWorkersRequest req;
    return ReplyProto(conn, Validated(req, [&] { return coordinator_->ListWorkers(req); }));
  }
  int64_t id;
  if (parts[2] != "trials" || parts.size() < 4 || parts.size() > 5) {
    return ReplyError(conn, absl::NotFoundError(absl::StrCat("no such path: ", ri->local_uri)));
  }
  if (!absl::SimpleAtoi(parts[3], &id)) {
    return ReplyError(conn, absl::InvalidArgumentError(
                                absl::StrCat("trial id: '", parts[3], "' is not a number")));
  }
  if (parts.size() == 4) {
    pb::GetTrialRequest req;
    req.set_trial_id(id);
    return ReplyProto(conn, Validated(req, [&] { return coordinator_->GetTrial(req); }));
  }
  if (parts[4] == "metrics") {
    pb::GetTrialMetricsRequest req;
    req.set_trial_id(id);
    req.set_name(Query(ri, "name"));
    return ReplyProto(conn, Validated(req, [&] { return coordinator_->GetTrialMetrics(req); }));
  }
  return ReplyError(conn, absl::NotFoundError(absl::StrCat("no such path: ", ri->local_uri)));
}

}  // namespace wrpn::server
