#pragma once
// TCP ports on this host for a trial's rendezvous store (rank 0's TCPStore). Stateless,
// thread-safe; the answers hold only at the moment they are given.
namespace wrpn::agent {

// A port that is free right now (the kernel's choice for port 0), on loopback or, for a store
// other machines reach, on every address; 0 when none could be had.
int FreePort(bool any_address = false);
// Whether a TCPStore could listen on `port` here now (as it does: any address, SO_REUSEADDR).
bool PortFree(int port);

}  // namespace wrpn::agent
