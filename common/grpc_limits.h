#pragma once
// gRPC settings shared by the coordinator (server/server.cc) and its clients (the CLI,
// client/connection.cc; the worker, worker/agent/coordinator_client.cc). A request larger than
// kMaxRequestBytes is refused by gRPC from its length prefix, before it is read into memory, with
// RESOURCE_EXHAUSTED; clients enforce the same bound when sending so the error is local. Answers
// may be larger (a page of 1000 trials with their configs, 5000 log lines of up to 4 KiB).
// docs/coordinator.md ("Limits") lists them.
#include <cstdint>
#include <cstdlib>

namespace wrpn {

inline constexpr int kGrpcMaxRequestBytes = 16 << 20;   // server receive, client send
inline constexpr int kGrpcMaxResponseBytes = 64 << 20;  // server send, client receive

// Call at the top of a client's main(), before any gRPC object exists. A gRPC client makes
// progress on a connection attempt only while some thread polls: a fail-fast call on a channel
// in TRANSIENT_FAILURE returns at once, so after a coordinator restart nothing polled the new
// connection until gRPC's backup poller ran, 5 s later (measured: every restart took 4-5 s to the
// first answered call). Polling every 100 ms brings that to ~0.15 s. An operator's own setting
// of the variable wins.
inline void UseFastGrpcReconnects() {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "100", /*overwrite=*/0);
}

}  // namespace wrpn
