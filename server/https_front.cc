#include "server/https_front.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace wrpn::server {
namespace {

using Clock = std::chrono::steady_clock;

// The first byte of every TLS connection: a handshake record (RFC 8446, section 5.1).
constexpr unsigned char kTlsHandshakeRecord = 0x16;

constexpr char kPlainHttpRefusal[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 58\r\nConnection: close\r\n\r\n"
    "this port serves HTTPS only: use https:// in the address\r\n";
static_assert(sizeof("this port serves HTTPS only: use https:// in the address\r\n") - 1 == 58);

struct HostPort {
  std::string host, port;
};

absl::StatusOr<HostPort> SplitListen(const std::string& listen) {
  HostPort hp;
  if (!listen.empty() && listen[0] == '[') {
    const size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("--http-listen: '", listen,
                                                     "' is not [address]:port"));
    }
    hp.host = listen.substr(1, close - 1);
    hp.port = listen.substr(close + 2);
  } else if (const size_t colon = listen.rfind(':'); colon != std::string::npos) {
    hp.host = listen.substr(0, colon);
    hp.port = listen.substr(colon + 1);
  } else {
    hp.port = listen;
  }
  int port = -1;
  if (!absl::SimpleAtoi(hp.port, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen: '", listen, "' has no valid port"));
  }
  if (hp.host.empty()) hp.host = "0.0.0.0";  // civetweb's meaning of a bare port
  return hp;
}

absl::StatusOr<int> ListenOn(const std::string& listen) {
  absl::StatusOr<HostPort> hp = SplitListen(listen);
  if (!hp.ok()) return hp.status();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addrs = nullptr;
  if (int rc = getaddrinfo(hp->host.c_str(), hp->port.c_str(), &hints, &addrs); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen: cannot resolve '", listen, "': ", gai_strerror(rc)));
  }
  int err = 0;
  for (addrinfo* a = addrs; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    const int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      freeaddrinfo(addrs);
      return fd;
    }
    err = errno;
    ::close(fd);
  }
  freeaddrinfo(addrs);
  return absl::UnavailableError(
      absl::StrCat("cannot listen for HTTPS on ", listen, ": ", std::strerror(err)));
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
}

enum class Wait { kReady, kTimeout, kStop };

// Waits for any of `fds` (an fd of -1 or events 0 is skipped), the deadline or `stop_fd`.
Wait WaitFor(std::initializer_list<pollfd> fds, int stop_fd, Clock::time_point deadline) {
  pollfd set[3];
  nfds_t n = 0;
  for (pollfd p : fds) {
    if (p.events == 0) p.fd = -1;
    set[n++] = p;
  }
  set[n++] = {stop_fd, POLLIN, 0};
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Wait::kTimeout;
    const int64_t ms = std::min<int64_t>(left.count() + 1, 60'000);  // re-checked after
    const int rc = ::poll(set, n, static_cast<int>(ms));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return Wait::kStop;
    if (rc == 0) continue;  // re-checks the deadline
    if (set[n - 1].revents != 0) return Wait::kStop;
    return Wait::kReady;
  }
}

short WantedEvents(SSL* ssl, int rc) {
  switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ: return POLLIN;
    case SSL_ERROR_WANT_WRITE: return POLLOUT;
    default: return 0;
  }
}

// Answers a plain-HTTP request with 400 and reads what the client sent (a close with unread
// input would reset the connection and could lose the answer).
void RefusePlainHttp(int client, int stop_fd) {
  (void)::send(client, kPlainHttpRefusal, sizeof(kPlainHttpRefusal) - 1, MSG_NOSIGNAL);
  ::shutdown(client, SHUT_WR);
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  char sink[4096];
  for (size_t total = 0; total < (64u << 10);) {
    if (WaitFor({{client, POLLIN, 0}}, stop_fd, deadline) != Wait::kReady) return;
    const ssize_t n = ::recv(client, sink, sizeof(sink), 0);
    if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) return;
    if (n > 0) total += static_cast<size_t>(n);
  }
}

int ConnectBackend(int port, int stop_fd, Clock::time_point deadline) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
  int err = 0;
  socklen_t len = sizeof(err);
  if (errno == EINPROGRESS && WaitFor({{fd, POLLOUT, 0}}, stop_fd, deadline) == Wait::kReady &&
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
    return fd;
  }
  ::close(fd);
  return -1;
}

// Copies bytes both ways between the TLS client and the plain backend until the backend's answer
// is complete (it closes after each), either side fails, the connection idles past
// `idle_timeout` or `stop_fd` fires.
void Relay(SSL* ssl, int client, int backend, int stop_fd, std::chrono::milliseconds idle_timeout) {
  std::string up, down;  // bytes read from one side and not yet written to the other
  bool client_eof = false, backend_eof = false;
  char buf[16384];
  auto deadline = Clock::now() + idle_timeout;
  for (;;) {
    bool progress = false;
    short client_events = 0, backend_events = 0;
    if (up.empty() && !client_eof) {
      const int n = SSL_read(ssl, buf, sizeof(buf));
      if (n > 0) {
        up.assign(buf, static_cast<size_t>(n));
        progress = true;
      } else if (SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN) {  // close_notify
        client_eof = progress = true;
        ::shutdown(backend, SHUT_WR);
      } else if (const short want = WantedEvents(ssl, n); want != 0) {
        client_events |= want;
      } else {
        return;  // reset, EOF without close_notify or a TLS error
      }
    }
    if (!up.empty()) {
      const ssize_t n = ::send(backend, up.data(), up.size(), MSG_NOSIGNAL);
      if (n > 0) {
        up.erase(0, static_cast<size_t>(n));
        progress = true;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        backend_events |= POLLOUT;
      } else if (errno != EINTR) {
        return;
      }
    }
    if (down.empty() && !backend_eof) {
      const ssize_t n = ::recv(backend, buf, sizeof(buf), 0);
      if (n > 0) {
        down.assign(buf, static_cast<size_t>(n));
        progress = true;
      } else if (n == 0) {
        backend_eof = progress = true;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        backend_events |= POLLIN;
      } else if (errno != EINTR) {
        return;
      }
    }
    if (!down.empty()) {
      const int n = SSL_write(ssl, down.data(), static_cast<int>(down.size()));
      if (n > 0) {
        down.erase(0, static_cast<size_t>(n));
        progress = true;
      } else if (const short want = WantedEvents(ssl, n); want != 0) {
        client_events |= want;
      } else {
        return;
      }
    }
    if (backend_eof && down.empty()) {
      (void)SSL_shutdown(ssl);  // best effort close_notify; the client has the whole answer
      return;
    }
    if (progress) {
      deadline = Clock::now() + idle_timeout;
      continue;
    }
    if (WaitFor({{client, client_events, 0}, {backend, backend_events, 0}}, stop_fd, deadline) !=
        Wait::kReady) {
      return;
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpsFront>> HttpsFront::Start(
    const std::string& listen, std::shared_ptr<const TlsServerContext> tls, int backend_port,
    const HttpsFrontOptions& options) {
  if (tls == nullptr) return absl::InvalidArgumentError("HTTPS needs a TLS context");
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("HTTPS max_connections must be at least 1");
  }
  // A client that goes away mid-answer must not end the process: writes report EPIPE instead.
  (void)signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<HttpsFront> f(new HttpsFront());
  f->tls_ = std::move(tls);
  f->options_ = options;
  f->backend_port_ = backend_port;
  absl::StatusOr<int> fd = ListenOn(listen);
  if (!fd.ok()) return fd.status();
  f->listen_fd_ = *fd;
  f->port_ = BoundPort(f->listen_fd_);
  f->accept_stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  f->connection_stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (f->accept_stop_fd_ < 0 || f->connection_stop_fd_ < 0) {
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  f->acceptor_ = std::thread([raw = f.get()] { raw->AcceptLoop(); });
  return f;
}

HttpsFront::~HttpsFront() {
  const uint64_t one = 1;
  if (acceptor_.joinable()) {
    {
      absl::MutexLock l(&mu_);
      closing_ = true;
    }
    (void)!::write(accept_stop_fd_, &one, sizeof(one));
    acceptor_.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  {
    absl::MutexLock l(&mu_);
    (void)mu_.AwaitWithTimeout(absl::Condition(this, &HttpsFront::AllIdle),
                               absl::FromChrono(options_.shutdown_grace));
    stopping_ = true;
  }
  if (connection_stop_fd_ >= 0) (void)!::write(connection_stop_fd_, &one, sizeof(one));
  for (std::thread& t : workers_) t.join();
  {
    absl::MutexLock l(&mu_);
    for (int fd : pending_) ::close(fd);
    pending_.clear();
  }
  for (int fd : {accept_stop_fd_, connection_stop_fd_})
    if (fd >= 0) ::close(fd);
}

bool HttpsFront::CanAccept() const {
  return closing_ || static_cast<int>(pending_.size()) < idle_ ||
         threads_ < options_.max_connections;
}

bool HttpsFront::HasWorkOrStop() const { return stopping_ || !pending_.empty(); }

bool HttpsFront::AllIdle() const { return pending_.empty() && idle_ == threads_; }

void HttpsFront::AcceptLoop() {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &HttpsFront::CanAccept));
      if (closing_) return;
    }
    if (WaitFor({{listen_fd_, POLLIN, 0}}, accept_stop_fd_, Clock::time_point::max()) ==
        Wait::kStop) {
      return;
    }
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: back off instead of spinning on the ready socket.
        (void)WaitFor({}, accept_stop_fd_, Clock::now() + std::chrono::milliseconds(100));
      }
      continue;
    }
    absl::MutexLock l(&mu_);
    pending_.push_back(fd);
    if (static_cast<int>(pending_.size()) > idle_) {
      ++threads_;
      workers_.emplace_back([this] { Work(); });
    }
  }
}

void HttpsFront::Work() {
  for (;;) {
    int fd;
    {
      absl::MutexLock l(&mu_);
      ++idle_;
      mu_.Await(absl::Condition(this, &HttpsFront::HasWorkOrStop));
      --idle_;
      if (stopping_) return;
      fd = pending_.front();
      pending_.pop_front();
    }
    Serve(fd);
    ::close(fd);
  }
}

void HttpsFront::Serve(int client) const {
  const auto deadline = Clock::now() + options_.handshake_timeout;
  const int stop = connection_stop_fd_;
  if (WaitFor({{client, POLLIN, 0}}, stop, deadline) != Wait::kReady) return;
  unsigned char first = 0;
  if (::recv(client, &first, 1, MSG_PEEK) != 1) return;
  if (first != kTlsHandshakeRecord) return RefusePlainHttp(client, stop);
  SSL* ssl = SSL_new(tls_->get());
  if (ssl == nullptr) return;
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  int backend = -1;
  bool handshaken = false;
  if (SSL_set_fd(ssl, client) == 1) {
    for (;;) {
      const int rc = SSL_accept(ssl);
      if (rc == 1) {
        handshaken = true;
        break;
      }
      const short want = WantedEvents(ssl, rc);
      if (want == 0 || WaitFor({{client, want, 0}}, stop, deadline) != Wait::kReady) break;
    }
  }
  if (handshaken) backend = ConnectBackend(backend_port_, stop, deadline);
  if (backend >= 0) {
    Relay(ssl, client, backend, stop, options_.idle_timeout);
    ::close(backend);
  }
  SSL_free(ssl);
}

}  // namespace wrpn::server
