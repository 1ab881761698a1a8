#include "server/web_assets.h"

namespace wrpn::server {
namespace {

std::string_view ContentType(std::string_view path) {
  if (path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

}  // namespace

std::optional<WebAsset> FindWebAsset(std::string_view uri) {
  if (uri == "/") uri = "/index.html";
  for (const auto& [path, body] : WebFiles()) {
    if (path == uri) return WebAsset{ContentType(path), body};
  }
  return std::nullopt;
}

}  // namespace wrpn::server
