#include "client/spec_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "client/connection.h"
#include "common/sweep_spec.h"

namespace wrpn::client {

std::string ReadSweepSpecFile(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxSweepSpecBytes) {
    throw CliError{kExitFailed,
                   absl::StrCat(path, ": sweep spec is ", size, " bytes; the coordinator accepts at "
                                "most ", kMaxSweepSpecBytes, " (1 MiB); nothing submitted")};
  }
  std::ifstream in(path);
  if (!in) throw CliError{kExitUsage, absl::StrCat("sweep submit: cannot read '", path, "'")};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace wrpn::client
