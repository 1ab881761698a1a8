#pragma once
// Authenticator: bearer tokens per role, read from a token file. Immutable after construction;
// thread-safe. Roles: admin (submit, cancel, retry, and everything viewer may), viewer (read),
// worker (the worker API).
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace wrpn::server {

enum class Role { kAdmin, kViewer, kWorker };
const char* RoleName(Role r);

class Authenticator {
 public:
  // No tokens: every call is allowed.
  Authenticator() = default;
  // Token file: one `<role> <token>` per line (role admin, viewer or worker); blank lines and
  // lines starting with # are ignored. Tokens must be at least 16 characters and unique.
  static absl::StatusOr<Authenticator> FromFile(const std::string& path);
  static absl::StatusOr<Authenticator> FromText(std::string_view text, const std::string& source);

  bool enabled() const { return !tokens_.empty(); }
  // `authorization` is the header's value ("Bearer <token>"). Missing or unknown token:
  // UNAUTHENTICATED; a known token without the needed role: PERMISSION_DENIED.
  absl::Status Check(std::string_view authorization, Role needed) const;

 private:
  std::vector<std::pair<std::string, Role>> tokens_;
};

}  // namespace wrpn::server
