// wrpn-coordinator: wires SqliteStore, SystemClock, Coordinator and CoordinatorServer together,
// then waits for SIGTERM/SIGINT and shuts down gracefully (stop accepting, finish in-flight calls,
// close the database).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "common/clock.h"
#include "common/crash_point.h"
#include "server/auth.h"
#include "server/coordinator.h"
#include "server/db_lock.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/sqlite_store.h"

namespace {

using namespace wrpn::server;

struct Flags {
  ServerOptions server;
  std::string db_path = "wrpn.db";
  std::string token_file;
  std::string paper_tables = WRPN_DEFAULT_PAPER_TABLES;
  double lease_ttl_s = 30;
  int retention_days = 30;
  double retry_backoff_s = 10;
};

void AddFlags(CLI::App& app, Flags& f) {
  app.set_config("--config", "", "TOML/INI file with any of these options");
  app.add_option("--listen", f.server.grpc_listen, "gRPC listen address host:port")
      ->capture_default_str();
  app.add_option("--http-listen", f.server.http_listen,
                 "HTTP listen address for /metrics, /healthz, /readyz, /api/v1 (\"\" = off)")
      ->capture_default_str();
  app.add_option("--db", f.db_path, "SQLite database file")->capture_default_str();
  app.add_option("--token-file", f.token_file, "bearer tokens: one `<role> <token>` per line");
  app.add_option("--tls-cert", f.server.tls_cert,
                 "PEM certificate chain: gRPC and the HTTP port then serve TLS only");
  app.add_option("--tls-key", f.server.tls_key, "PEM private key for --tls-cert");
  app.add_flag("--http-plain", f.server.http_plain,
               "keep the HTTP port plain with --tls-cert (TLS ends in a proxy in front of it)");
  app.add_option("--lease-ttl", f.lease_ttl_s, "seconds a lease lives without a heartbeat")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--retry-backoff", f.retry_backoff_s,
                 "seconds a trial whose attempt failed waits before it is leased again, doubled "
                 "for each further failure in a row, at most 300 (or this value if larger); "
                 "0 = at once")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--event-retention-days", f.retention_days,
                 "delete event-log entries older than this (0 = keep forever)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--paper-tables", f.paper_tables, "the paper's reference values (JSON)")
      ->capture_default_str();
  app.add_flag("--allow-unauthenticated", f.server.allow_unauthenticated,
               "listen on a non-loopback address without tokens");
}

// `paper_tables_given`: --paper-tables was on the command line.
CoordinatorOptions OptionsOf(const Flags& f, bool paper_tables_given) {
  CoordinatorOptions copts;
  copts.lease_ttl = std::chrono::milliseconds(static_cast<int64_t>(f.lease_ttl_s * 1000));
  copts.paper_tables_path = f.paper_tables;
  copts.retry_backoff = std::chrono::milliseconds(static_cast<int64_t>(f.retry_backoff_s * 1000));
  copts.retry_backoff_max = std::max<std::chrono::milliseconds>(std::chrono::minutes(5),
                                                               copts.retry_backoff);
  if (!paper_tables_given && !std::ifstream(f.paper_tables)) {
    // Installed without the source tree: keep the copy stored in the database, if any.
    std::cerr << "wrpn-coordinator: " << f.paper_tables
              << " not found; using the paper tables stored in the database\n";
    copts.paper_tables_path.clear();
  }
  return copts;
}

int Fail(const absl::Status& st, int code) {
  std::cerr << "wrpn-coordinator: " << st.message() << "\n";
  return code;
}

// The database, locked for the life of this process (released on exit and SIGKILL): one
// coordinator per database.
absl::Status OpenStore(const std::string& db_path, std::unique_ptr<DbLock>* lock,
                       std::unique_ptr<SqliteStore>* store) {
  if (db_path != ":memory:") {
    auto locked = DbLock::Acquire(db_path);
    if (!locked.ok()) return locked.status();
    *lock = *std::move(locked);
  }
  auto opened = SqliteStore::Open(db_path);
  if (!opened.ok()) return opened.status();
  *store = *std::move(opened);
  return absl::OkStatus();
}

void LogStarted(const Flags& f, const CoordinatorServer& running, const Authenticator& auth) {
  std::cerr << "wrpn-coordinator: gRPC on " << f.server.grpc_listen << " (port "
            << running.grpc_port() << ")";
  if (!f.server.http_listen.empty())
    std::cerr << ", HTTP on port " << running.http_port() << (running.http_tls() ? " (HTTPS only)" : "");
  std::cerr << ", db " << f.db_path << ", lease TTL " << f.lease_ttl_s << " s\n";
  if (const wrpn::CrashPointSetting crash = wrpn::ActiveCrashPoint(); !crash.point.empty()) {
    std::cerr << "wrpn-coordinator: WARNING: WRPN_CRASH_AT is set: this process SIGKILLs itself "
              << "at crash point '" << crash.point << "', hit " << crash.hit << " (tests only)\n";
  }
  if (!auth.enabled()) {
    std::cerr << "wrpn-coordinator: WARNING: no token file; authentication is off"
              << (f.server.allow_unauthenticated ? " (--allow-unauthenticated)"
                                                 : ", listening on loopback only")
              << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wrpn-coordinator: accepts sweeps, leases trials to workers, keeps results"};
  Flags flags;
  AddFlags(app, flags);
  CLI11_PARSE(app, argc, argv);
  (void)wrpn::ActiveCrashPoint();  // a malformed WRPN_CRASH_AT ends the process now, not later

  // Block the shutdown signals in every thread; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Authenticator auth;
  if (!flags.token_file.empty()) {
    auto a = Authenticator::FromFile(flags.token_file);
    if (!a.ok()) return Fail(a.status(), 2);
    auth = *std::move(a);
  }
  std::unique_ptr<DbLock> db_lock;
  std::unique_ptr<SqliteStore> store;
  if (absl::Status st = OpenStore(flags.db_path, &db_lock, &store); !st.ok()) return Fail(st, 1);
  wrpn::SystemClock clock;
  MetricsRegistry registry;
  auto coordinator = Coordinator::Create(store.get(), &clock, &registry,
                                         OptionsOf(flags, app.count("--paper-tables") > 0));
  if (!coordinator.ok()) return Fail(coordinator.status(), 1);
  if (flags.retention_days > 0) {
    auto pruned = (*coordinator)->PruneEvents(std::chrono::hours(24 * flags.retention_days));
    if (pruned.ok() && *pruned > 0)
      std::cerr << "wrpn-coordinator: pruned " << *pruned << " old events\n";
  }
  auto running = CoordinatorServer::Start(coordinator->get(), &auth, &registry, flags.server);
  if (!running.ok()) return Fail(running.status(), 2);
  LogStarted(flags, **running, auth);
  int sig = 0;
  sigwait(&signals, &sig);
  std::cerr << "wrpn-coordinator: signal " << sig << ", shutting down\n";
  (*running)->Shutdown(std::chrono::seconds(10));
  running->reset();
  coordinator->reset();
  store.reset();  // closes the database after the last write
  std::cerr << "wrpn-coordinator: stopped\n";
  return 0;
}
