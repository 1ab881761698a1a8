#include "server/auth.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace wrpn::server {
namespace {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

const char* RoleName(Role r) {
  switch (r) {
    case Role::kAdmin: return "admin";
    case Role::kViewer: return "viewer";
    case Role::kWorker: return "worker";
  }
  return "?";
}

absl::StatusOr<Authenticator> Authenticator::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read token file '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return FromText(ss.str(), path);
}

absl::StatusOr<Authenticator> Authenticator::FromText(std::string_view text,
                                                      const std::string& source) {
  Authenticator a;
  int line_no = 0;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    ++line_no;
    std::istringstream fields(line);
    std::vector<std::string> parts;
    for (std::string f; fields >> f;) parts.push_back(f);
    if (parts.empty() || parts[0][0] == '#') continue;
    const std::string where = absl::StrCat(source, ":", line_no);
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected `<role> <token>`, got ", parts.size(), " fields"));
    }
    Role role;
    if (parts[0] == "admin") role = Role::kAdmin;
    else if (parts[0] == "viewer") role = Role::kViewer;
    else if (parts[0] == "worker") role = Role::kWorker;
    else
      return absl::InvalidArgumentError(absl::StrCat(where, ": unknown role '", parts[0],
                                                     "' (admin, viewer or worker)"));
    if (parts[1].size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": token is ", parts[1].size(), " characters; use at least 16"));
    }
    for (const auto& [t, _] : a.tokens_) {
      if (t == parts[1]) return absl::InvalidArgumentError(absl::StrCat(where, ": duplicate token"));
    }
    a.tokens_.emplace_back(parts[1], role);
  }
  if (a.tokens_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no tokens"));
  }
  return a;
}

absl::Status Authenticator::Check(std::string_view authorization, Role needed) const {
  if (!enabled()) return absl::OkStatus();
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) return absl::UnauthenticatedError("missing bearer token");
  if (authorization.substr(0, kBearer.size()) != kBearer) {
    return absl::UnauthenticatedError("authorization must be `Bearer <token>`");
  }
  std::string_view token = authorization.substr(kBearer.size());
  const Role* found = nullptr;
  for (const auto& [t, role] : tokens_) {
    if (ConstantTimeEquals(t, token)) found = &role;
  }
  if (found == nullptr) return absl::UnauthenticatedError("invalid bearer token");
  const bool ok = *found == needed || (*found == Role::kAdmin && needed == Role::kViewer);
  if (!ok) {
    return absl::PermissionDeniedError(absl::StrCat("a ", RoleName(*found), " token cannot do this; it needs the ",
                                                    RoleName(needed), " role"));
  }
  return absl::OkStatus();
}

}  // namespace wrpn::server
