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

int main(int argc, char** argv) {
  using namespace wrpn::server;
  CLI::App app{"wrpn-coordinator: accepts sweeps, leases trials to workers, keeps results"};
  ServerOptions server;
  std::string db_path = "wrpn.db";
  std::string token_file;
  std::string paper_tables = WRPN_DEFAULT_PAPER_TABLES;
  double lease_ttl_s = 30;
  int retention_days = 30;
  double retry_backoff_s = 10;
  app.set_config("--config", "", "TOML/INI file with any of these options");
  app.add_option("--listen", server.grpc_listen, "gRPC listen address host:port")
      ->capture_default_str();
  app.add_option("--http-listen", server.http_listen,
                 "HTTP listen address for /metrics, /healthz, /readyz, /api/v1 (\"\" = off)")
      ->capture_default_str();
  app.add_option("--db", db_path, "SQLite database file")->capture_default_str();
  app.add_option("--token-file", token_file, "bearer tokens: one `<role> <token>` per line");
  app.add_option("--tls-cert", server.tls_cert,
                 "PEM certificate chain: gRPC and the HTTP port then serve TLS only");
  app.add_option("--tls-key", server.tls_key, "PEM private key for --tls-cert");
  app.add_flag("--http-plain", server.http_plain,
               "keep the HTTP port plain with --tls-cert (TLS ends in a proxy in front of it)");
  app.add_option("--lease-ttl", lease_ttl_s, "seconds a lease lives without a heartbeat")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--retry-backoff", retry_backoff_s,
                 "seconds a trial whose attempt failed waits before it is leased again, doubled "
                 "for each further failure in a row, at most 300 (or this value if larger); "
                 "0 = at once")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--event-retention-days", retention_days,
                 "delete event-log entries older than this (0 = keep forever)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--paper-tables", paper_tables, "the paper's reference values (JSON)")
      ->capture_default_str();
  app.add_flag("--allow-unauthenticated", server.allow_unauthenticated,
               "listen on a non-loopback address without tokens");
  CLI11_PARSE(app, argc, argv);
  (void)wrpn::ActiveCrashPoint();  // a malformed WRPN_CRASH_AT ends the process now, not later

  // Block the shutdown signals in every thread; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Authenticator auth;
  if (!token_file.empty()) {
    auto a = Authenticator::FromFile(token_file);
    if (!a.ok()) {
      std::cerr << "wrpn-coordinator: " << a.status().message() << "\n";
      return 2;
    }
    auth = *std::move(a);
  }
  // One coordinator per database, for the life of this process (released on exit and SIGKILL).
  std::unique_ptr<DbLock> db_lock;
  if (db_path != ":memory:") {
    auto locked = DbLock::Acquire(db_path);
    if (!locked.ok()) {
      std::cerr << "wrpn-coordinator: " << locked.status().message() << "\n";
      return 1;
    }
    db_lock = *std::move(locked);
  }
  auto store = SqliteStore::Open(db_path);
  if (!store.ok()) {
    std::cerr << "wrpn-coordinator: " << store.status().message() << "\n";
    return 1;
  }
  wrpn::SystemClock clock;
  MetricsRegistry registry;
  CoordinatorOptions copts;
  copts.lease_ttl = std::chrono::milliseconds(static_cast<int64_t>(lease_ttl_s * 1000));
  copts.paper_tables_path = paper_tables;
  copts.retry_backoff = std::chrono::milliseconds(static_cast<int64_t>(retry_backoff_s * 1000));
  copts.retry_backoff_max = std::max<std::chrono::milliseconds>(std::chrono::minutes(5),
                                                               copts.retry_backoff);
  if (app.count("--paper-tables") == 0 && !std::ifstream(paper_tables)) {
    // Installed without the source tree: keep the copy stored in the database, if any.
    std::cerr << "wrpn-coordinator: " << paper_tables
              << " not found; using the paper tables stored in the database\n";
    copts.paper_tables_path.clear();
  }
  auto coordinator = Coordinator::Create(store->get(), &clock, &registry, copts);
  if (!coordinator.ok()) {
    std::cerr << "wrpn-coordinator: " << coordinator.status().message() << "\n";
    return 1;
  }
  if (retention_days > 0) {
    auto pruned = (*coordinator)->PruneEvents(std::chrono::hours(24 * retention_days));
    if (pruned.ok() && *pruned > 0)
      std::cerr << "wrpn-coordinator: pruned " << *pruned << " old events\n";
  }
  auto running = CoordinatorServer::Start(coordinator->get(), &auth, &registry, server);
  if (!running.ok()) {
    std::cerr << "wrpn-coordinator: " << running.status().message() << "\n";
    return 2;
  }
  std::cerr << "wrpn-coordinator: gRPC on " << server.grpc_listen << " (port "
            << (*running)->grpc_port() << ")";
  if (!server.http_listen.empty())
    std::cerr << ", HTTP on port " << (*running)->http_port()
              << ((*running)->http_tls() ? " (HTTPS only)" : "");
  std::cerr << ", db " << db_path << ", lease TTL " << lease_ttl_s << " s\n";
  if (const wrpn::CrashPointSetting crash = wrpn::ActiveCrashPoint(); !crash.point.empty()) {
    std::cerr << "wrpn-coordinator: WARNING: WRPN_CRASH_AT is set: this process SIGKILLs itself "
              << "at crash point '" << crash.point << "', hit " << crash.hit << " (tests only)\n";
  }
  if (!auth.enabled()) {
    std::cerr << "wrpn-coordinator: WARNING: no token file; authentication is off"
              << (server.allow_unauthenticated ? " (--allow-unauthenticated)"
                                               : ", listening on loopback only")
              << "\n";
  }
  int sig = 0;
  sigwait(&signals, &sig);
  std::cerr << "wrpn-coordinator: signal " << sig << ", shutting down\n";
  (*running)->Shutdown(std::chrono::seconds(10));
  running->reset();
  coordinator->reset();
  store->reset();  // closes the database after the last write
  std::cerr << "wrpn-coordinator: stopped\n";
  return 0;
}
