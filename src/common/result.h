// Result<T> and Error: how every I/O path and every parser of outside input reports failure.
//
// Modelled on leveldb's Status: an OK result carries no error object, errors have named
// constructors and IsX() predicates. No exceptions cross module boundaries; adapters catch
// library exceptions and convert them here. Both types are [[nodiscard]] so an ignored failure
// is a compile error under -Werror.
//
// Thread-safety: values; safe to copy between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace pgha {

enum class ErrorCode {
  kUnavailable,       // a dependency (DCS, PostgreSQL, a peer) could not be reached
  kConflict,          // a compare-and-swap lost, or the operation clashes with current state
  kNotFound,          // the thing asked for does not exist
  kInvalid,           // bad input: a config value, a request, a DCS value
  kTimeout,           // a deadline passed
  kCorrupt,           // stored data is damaged or inconsistent
  kPermissionDenied,  // refused by an authority (auth, allowlist)
  kInternal,          // a bug or an unexpected library failure
};

const char* ErrorCodeName(ErrorCode code);

class [[nodiscard]] Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Error Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Error Conflict(std::string m) { return {ErrorCode::kConflict, std::move(m)}; }
  static Error NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error Invalid(std::string m) { return {ErrorCode::kInvalid, std::move(m)}; }
  static Error Timeout(std::string m) { return {ErrorCode::kTimeout, std::move(m)}; }
  static Error Corrupt(std::string m) { return {ErrorCode::kCorrupt, std::move(m)}; }
  static Error PermissionDenied(std::string m) {
    return {ErrorCode::kPermissionDenied, std::move(m)};
  }
  static Error Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsUnavailable() const { return code_ == ErrorCode::kUnavailable; }
  bool IsConflict() const { return code_ == ErrorCode::kConflict; }
  bool IsNotFound() const { return code_ == ErrorCode::kNotFound; }
  bool IsInvalid() const { return code_ == ErrorCode::kInvalid; }
  bool IsTimeout() const { return code_ == ErrorCode::kTimeout; }
  bool IsCorrupt() const { return code_ == ErrorCode::kCorrupt; }
  bool IsPermissionDenied() const { return code_ == ErrorCode::kPermissionDenied; }

  // Returns a copy whose message is prefixed with `context: `.
  Error WithContext(const std::string& context) const { return {code_, context + ": " + message_}; }
  // "Invalid: <message>"
  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // REQUIRES: ok()
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // REQUIRES: !ok()
  const Error& error() const {
    assert(!ok());
    return std::get<1>(state_);
  }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  // REQUIRES: !ok()
  const Error& error() const {
    assert(!ok());
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Status OkStatus() { return {}; }

}  // namespace pgha

// Propagates an error from an expression returning Result<...>; evaluates to nothing.
#define PGHA_RETURN_IF_ERROR(expr) \
  do {                             \
    auto pgha_status_ = (expr);    \
    if (!pgha_status_.ok()) {      \
      return pgha_status_.error(); \
    }                              \
  } while (false)
