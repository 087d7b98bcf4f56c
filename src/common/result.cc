#include "common/result.h"

namespace pgha {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnavailable:
      return "Unavailable";
    case ErrorCode::kConflict:
      return "Conflict";
    case ErrorCode::kNotFound:
      return "NotFound";
    case ErrorCode::kInvalid:
      return "Invalid";
    case ErrorCode::kTimeout:
      return "Timeout";
    case ErrorCode::kCorrupt:
      return "Corrupt";
    case ErrorCode::kPermissionDenied:
      return "PermissionDenied";
    case ErrorCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

std::string Error::ToString() const { return std::string(ErrorCodeName(code_)) + ": " + message_; }

}  // namespace pgha
