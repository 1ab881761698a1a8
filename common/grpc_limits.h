#pragma once
// gRPC message-size limits shared by the coordinator (server/server.cc) and its clients (the CLI,
// client/connection.cc; the worker, worker/agent/coordinator_client.cc). A request larger than
// kMaxRequestBytes is refused by gRPC from its length prefix, before it is read into memory, with
// RESOURCE_EXHAUSTED; clients enforce the same bound when sending so the error is local. Answers
// may be larger (a page of 1000 trials with their configs, 5000 log lines of up to 4 KiB).
// docs/coordinator.md ("Limits") lists them.
#include <cstdint>

namespace wrpn {

inline constexpr int kGrpcMaxRequestBytes = 16 << 20;   // server receive, client send
inline constexpr int kGrpcMaxResponseBytes = 64 << 20;  // server send, client receive

}  // namespace wrpn
