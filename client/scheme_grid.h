#pragma once
// The grid by quantization scheme (issue 20): `wrpn grid` shows one set of tables per scheme when
// a sweep has more than one, `wrpn grid --compare scheme` puts the schemes side by side per cell
// (same network, width and bits, hence the same compute cost), and `wrpn plot` draws one Pareto
// series per network and scheme. Plain functions over a GridView; thread-safe.
#include <string>
#include <vector>

#include "client/grid.h"

namespace wrpn::client {

// The view's schemes in the order of their first cell.
std::vector<std::string> GridSchemes(const GridView& v);
// The cells of one scheme.
GridView SchemeView(const GridView& v, const std::string& scheme);
// GridTables, once per scheme (titles prefixed "scheme S:") when the view has several schemes.
std::vector<Table> GridTablesPerScheme(const GridView& v, GridMetric metric);
// Per network and width: one row per (wbits, abits), the cell's compute cost, then one column per
// scheme (top-1 or top-5, mean ± std over seeds), then the scheme with the highest value.
std::vector<Table> SchemeCompareTables(const GridView& v, GridMetric metric);
// "" when the view has one scheme, else " <scheme>" (appended to a Pareto series name).
std::string SchemeSeriesSuffix(const GridView& v, const pb::GridCell& c);

}  // namespace wrpn::client
