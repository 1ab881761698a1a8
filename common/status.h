#pragma once
// Helpers for absl::Status / absl::StatusOr propagation. Header-only, no state.
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define WRPN_CONCAT_INNER(a, b) a##b
#define WRPN_CONCAT(a, b) WRPN_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                     \
  do {                                            \
    ::absl::Status wrpn_status_ = (expr);         \
    if (!wrpn_status_.ok()) return wrpn_status_;  \
  } while (0)

// Declares/assigns `lhs` from a StatusOr, returning its status on error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(WRPN_CONCAT(wrpn_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
