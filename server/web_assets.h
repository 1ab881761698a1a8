#pragma once
// The web page's files (server/web/: index.html, app.js, style.css), compiled into the
// coordinator by server/web/embed.cmake, and how HttpServer answers a request for one. Immutable
// data; thread-safe.
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace wrpn::server {

// ("/index.html", its bytes), ... (generated).
const std::vector<std::pair<std::string_view, std::string_view>>& WebFiles();

struct WebAsset {
  std::string_view content_type;
  std::string_view body;
};
// The file served at `uri` ("/" is /index.html), or nullopt.
std::optional<WebAsset> FindWebAsset(std::string_view uri);

}  // namespace wrpn::server
