// HTTPS on the coordinator's HTTP port (server/https_front.h, server/tls_context.h): certificates
// from a test CA made with the openssl tool, an OpenSSL client that verifies the server, the real
// CoordinatorServer with tokens, and the front's bounds (handshake timeout, connection limit,
// shutdown with connections open) against a minimal backend.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/https_front.h"
#include "server/server.h"
#include "server/sqlite_store.h"
#include "server/tls_context.h"
#include "tests/fakes/fake_clock.h"

namespace wrpn::server {
namespace {

using namespace std::chrono_literals;
using testing::HasSubstr;
using testing::StartsWith;

constexpr const char* kViewer = "viewer-token-0123456789";

// A CA, a certificate it signed for IP 127.0.0.1 with its key, a key that does not match it and
// a passphrase-protected key; made once per process. "" when openssl failed.
struct TestPki {
  std::string dir, ca, cert, key, other_key, encrypted_key;
};

const TestPki& Pki() {
  static const TestPki pki = [] {
    TestPki p;
    p.dir = std::filesystem::path(testing::TempDir()) / ("https-" + std::to_string(getpid()));
    std::filesystem::create_directories(p.dir);
    p.ca = p.dir + "/ca.pem";
    p.cert = p.dir + "/cert.pem";
    p.key = p.dir + "/key.pem";
    p.other_key = p.dir + "/other.key";
    p.encrypted_key = p.dir + "/encrypted.key";
    std::ofstream(p.dir + "/san.ext") << "subjectAltName=IP:127.0.0.1\n";
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    const std::string d = p.dir + "/";
    const std::string cmd =
        "cd " + p.dir + " && openssl req -x509" + ec + "-days 2 -subj /CN=wrpn-test-ca " +
        "-keyout ca.key -out ca.pem && openssl req" + ec + "-subj /CN=127.0.0.1 " +
        "-keyout key.pem -out cert.csr && openssl x509 -req -in cert.csr -CA ca.pem " +
        "-CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out cert.pem && " +
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out other.key && " +
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -aes256 " +
        "-pass pass:secret -out encrypted.key";
    if (std::system(("(" + cmd + ") > " + d + "openssl.log 2>&1").c_str()) != 0) p.dir.clear();
    return p;
  }();
  return pki;
}

#define REQUIRE_PKI()                                                        \
  if (Pki().dir.empty()) GTEST_SKIP() << "the openssl tool could not make test certificates"

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, n);
  return out;
}

// A TLS client that trusts `ca` (empty: nothing) and checks the certificate names 127.0.0.1.
class TlsClient {
 public:
  explicit TlsClient(const std::string& ca) : ctx_(SSL_CTX_new(TLS_client_method())) {
    if (!ca.empty()) SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  ~TlsClient() {
    Close();
    SSL_CTX_free(ctx_);
  }
  // Connects and completes the handshake; the OpenSSL errors when it fails.
  absl::Status Open(int port) {
    fd_ = Connect(port);
    if (fd_ < 0) return absl::UnavailableError("connect failed");
    ssl_ = SSL_new(ctx_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) == 1) return absl::OkStatus();
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    return absl::UnavailableError(buf);
  }
  // One request; the whole answer (the server closes after it).
  std::string Get(const std::string& path, const std::string& token = "") {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    req += "Connection: close\r\n\r\n";
    if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) return "";
    std::string out;
    char buf[4096];
    for (int n; (n = SSL_read(ssl_, buf, sizeof(buf))) > 0;) out.append(buf, n);
    return out;
  }
  void Close() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    ssl_ = nullptr;
    fd_ = -1;
  }
  // True when the server ended the connection (EOF or reset) before sending any data; blocks
  // at most SO_RCVTIMEO.
  bool EndedByServer() {
    char c;
    return SSL_read(ssl_, &c, 1) <= 0;
  }

 private:
  SSL_CTX* ctx_;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

TEST(TlsServerContextTest, BadFilesAreErrorsNamingThem) {
  REQUIRE_PKI();
  const TestPki& p = Pki();
  ASSERT_TRUE(TlsServerContext::Load(p.cert, p.key).ok());
  auto missing = TlsServerContext::Load(p.cert, p.dir + "/no-such.key");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("--tls-key: cannot read '" + p.dir + "/no-such.key': No such file"));
  auto no_cert = TlsServerContext::Load(p.dir + "/no-such.pem", p.key);
  EXPECT_THAT(no_cert.status().message(), HasSubstr("--tls-cert: cannot read '" + p.dir));
  auto not_cert = TlsServerContext::Load(p.key, p.key);
  EXPECT_THAT(not_cert.status().message(),
              HasSubstr("--tls-cert: '" + p.key + "' is not a PEM certificate chain"));
  auto not_key = TlsServerContext::Load(p.cert, p.ca);
  EXPECT_THAT(not_key.status().message(),
              HasSubstr("--tls-key: '" + p.ca + "' is not an unencrypted PEM private key"));
  auto encrypted = TlsServerContext::Load(p.cert, p.encrypted_key);
  EXPECT_THAT(encrypted.status().message(), HasSubstr("'" + p.encrypted_key + "' is not an"));
  auto other = TlsServerContext::Load(p.cert, p.other_key);
  EXPECT_THAT(other.status().message(),
              HasSubstr("--tls-key: '" + p.other_key + "' does not belong to the certificate"));
}

class HttpsServerTest : public testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_PKI();
    auto store = SqliteStore::Open(":memory:");
    ASSERT_TRUE(store.ok());
    store_ = *std::move(store);
    auto c = Coordinator::Create(store_.get(), &clock_, &registry_, {});
    ASSERT_TRUE(c.ok());
    coordinator_ = *std::move(c);
    auto auth = Authenticator::FromText(std::string("viewer ") + kViewer + "\n", "tokens");
    ASSERT_TRUE(auth.ok());
    auth_ = *std::move(auth);
    opts_.grpc_listen = "127.0.0.1:0";
    opts_.http_listen = "127.0.0.1:0";
    opts_.tick_interval = 0ms;
    opts_.tls_cert = Pki().cert;
    opts_.tls_key = Pki().key;
  }
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start() {
    return CoordinatorServer::Start(coordinator_.get(), &auth_, &registry_, opts_);
  }
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  MetricsRegistry registry_;
  std::unique_ptr<Coordinator> coordinator_;
  Authenticator auth_;
  ServerOptions opts_;
};

TEST_F(HttpsServerTest, ApiOverVerifiedTlsNeedsTheToken) {
  auto s = Start();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE((*s)->http_tls());
  const int port = (*s)->http_port();
  TlsClient client(Pki().ca);
  ASSERT_TRUE(client.Open(port).ok());
  std::string answer = client.Get("/api/v1/sweeps", kViewer);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(answer, HasSubstr("\"sweeps\""));
  client.Close();
  ASSERT_TRUE(client.Open(port).ok());
  EXPECT_THAT(client.Get("/api/v1/sweeps"), StartsWith("HTTP/1.1 401"));
  client.Close();
  ASSERT_TRUE(client.Open(port).ok());
  EXPECT_THAT(client.Get("/"), HasSubstr("<script src=\"/app.js\"></script>"));
  // A client without the CA refuses the certificate.
  TlsClient untrusting("");
  EXPECT_THAT(untrusting.Open(port).message(), HasSubstr("certificate verify failed"));
}

TEST_F(HttpsServerTest, PlainHttpOnTheTlsPortIsRefusedWithoutData) {
  auto s = Start();
  ASSERT_TRUE(s.ok()) << s.status();
  const int fd = Connect((*s)->http_port());
  ASSERT_GE(fd, 0);
  const std::string req = std::string("GET /api/v1/sweeps HTTP/1.1\r\nHost: x\r\n") +
                          "Authorization: Bearer " + kViewer + "\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  const std::string answer = ReadAll(fd);
  ::close(fd);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(answer, HasSubstr("this port serves HTTPS only"));
  EXPECT_THAT(answer, testing::Not(HasSubstr("sweeps")));
}

TEST_F(HttpsServerTest, HttpPlainKeepsHttpWhileGrpcUsesTls) {
  opts_.http_plain = true;
  auto s = Start();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE((*s)->http_tls());
  const int fd = Connect((*s)->http_port());
  ASSERT_GE(fd, 0);
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  EXPECT_THAT(ReadAll(fd), StartsWith("HTTP/1.1 200 OK"));
  ::close(fd);
}

TEST_F(HttpsServerTest, ABadKeyStopsStartBeforeAnythingListens) {
  opts_.tls_key = Pki().dir + "/missing.key";
  auto s = Start();
  EXPECT_THAT(s.status().message(), HasSubstr("--tls-key: cannot read '" + opts_.tls_key + "'"));
  opts_.tls_key = Pki().other_key;
  opts_.http_listen = "";  // the files are checked even without an HTTP port (gRPC uses them)
  s = Start();
  EXPECT_THAT(s.status().message(), HasSubstr("does not belong to the certificate"));
}

// A backend that answers every connection "HTTP/1.1 200 OK ... ok" once it has read a request.
class Backend {
 public:
  Backend() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd_, 16);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (int c; (c = ::accept(fd_, nullptr, nullptr)) >= 0;) {
        std::string req;
        char buf[1024];
        for (ssize_t n; req.find("\r\n\r\n") == std::string::npos &&
                        (n = ::recv(c, buf, sizeof(buf), 0)) > 0;) {
          req.append(buf, n);
        }
        const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        (void)!::send(c, ok, sizeof(ok) - 1, MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~Backend() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
  std::thread thread_;
};

class HttpsFrontTest : public testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_PKI();
    auto tls = TlsServerContext::Load(Pki().cert, Pki().key);
    ASSERT_TRUE(tls.ok()) << tls.status();
    tls_ = *tls;
  }
  std::unique_ptr<HttpsFront> Start(const HttpsFrontOptions& o) {
    auto f = HttpsFront::Start("127.0.0.1:0", tls_, backend_.port(), o);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? *std::move(f) : nullptr;
  }
  Backend backend_;
  std::shared_ptr<const TlsServerContext> tls_;
};

TEST_F(HttpsFrontTest, ASilentClientIsClosedAfterTheHandshakeTimeout) {
  HttpsFrontOptions o;
  o.handshake_timeout = 200ms;
  auto front = Start(o);
  ASSERT_TRUE(front);
  const int fd = Connect(front->port());
  ASSERT_GE(fd, 0);
  const auto t0 = std::chrono::steady_clock::now();
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);  // closed by the front, well before the 10 s SO_RCVTIMEO
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  ::close(fd);
}

TEST_F(HttpsFrontTest, ConnectionsBeyondTheLimitWaitForAFreeSlot) {
  HttpsFrontOptions o;
  o.max_connections = 1;
  auto front = Start(o);
  ASSERT_TRUE(front);
  TlsClient holder(Pki().ca);
  ASSERT_TRUE(holder.Open(front->port()).ok());  // takes the only slot and keeps it
  std::atomic<bool> done{false};
  std::string answer;
  std::thread second([&] {
    TlsClient c(Pki().ca);
    if (c.Open(front->port()).ok()) answer = c.Get("/x");
    done = true;
  });
  std::this_thread::sleep_for(300ms);  // ample for a free front to answer on loopback
  EXPECT_FALSE(done.load()) << "a second connection was served beside the first";
  holder.Close();
  second.join();
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(answer, testing::EndsWith("\r\n\r\nok"));
}

TEST_F(HttpsFrontTest, ShutdownClosesOpenConnectionsAfterTheGrace) {
  HttpsFrontOptions o;
  o.shutdown_grace = 100ms;
  auto front = Start(o);
  ASSERT_TRUE(front);
  TlsClient idle(Pki().ca);
  const int port = front->port();
  ASSERT_TRUE(idle.Open(port).ok());  // handshaken, no request: idle for 60 s
  const auto t0 = std::chrono::steady_clock::now();
  front.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_TRUE(idle.EndedByServer());
  EXPECT_LT(Connect(port), 0);  // no longer listening
}

}  // namespace
}  // namespace wrpn::server
