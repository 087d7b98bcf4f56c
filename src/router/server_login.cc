#include "router/server_login.h"

#include <fmt/format.h>

#include <algorithm>

#include "router/pg_bytes.h"

namespace pgha::router {
namespace {

constexpr std::string_view kScram = "SCRAM-SHA-256";

std::string UserOf(const std::vector<std::pair<std::string, std::string>>& parameters) {
  for (const auto& [name, value] : parameters) {
    if (name == "user") {
      return value;
    }
  }
  return "";
}

}  // namespace

ServerLogin::ServerLogin(std::vector<std::pair<std::string, std::string>> parameters,
                         std::string client_key, StoredSecret secret)
    : parameters_(std::move(parameters)),
      client_key_(std::move(client_key)),
      secret_(std::move(secret)) {}

std::string ServerLogin::Start() { return StartupMessage(parameters_); }

std::string ServerLogin::TakeOutput() { return std::exchange(output_, std::string()); }

bool ServerLogin::retryable() const {
  return server_error_ &&
         (server_error_->sqlstate == "57P01" || server_error_->sqlstate == "57P02" ||
          server_error_->sqlstate == "57P03");
}

ServerLogin::Next ServerLogin::Fail(std::string why) {
  failure_ = std::move(why);
  done_ = true;
  return Next::kFailed;
}

ServerLogin::Next ServerLogin::Feed(std::string_view bytes) {
  if (done_) {
    return failure_.empty() ? Next::kReady : Next::kFailed;
  }
  reader_.Feed(bytes);
  while (auto message = reader_.Next()) {
    switch (message->type) {
      case 'R': {
        auto request = ParseAuthentication(*message);
        if (!request) {
          return Fail("malformed authentication request from the server");
        }
        if (Next next = OnAuthentication(*request); next != Next::kRead) {
          return next;
        }
        if (request->code == static_cast<int32_t>(AuthCode::kOk)) {
          greeting_.push_back(*message);
        }
        break;
      }
      case 'E':
        server_error_ = ParseErrorResponse(*message);
        return Fail(fmt::format("the server refused the login: {}",
                                server_error_ ? server_error_->message : "(unreadable error)"));
      case 'v':  // NegotiateProtocolVersion: the server speaks an older minor version; so do we
        break;
      case 'S':
      case 'N':
        if (!authenticated_) {
          return Fail(fmt::format("the server sent message type {} before authenticating",
                                  static_cast<int>(message->type)));
        }
        greeting_.push_back(*message);
        break;
      case 'K':
        if (!authenticated_ || message->body.size() != 8) {
          return Fail("malformed or early BackendKeyData from the server");
        }
        backend_key_ = CancelKey{GetInt32(message->body, 0), GetInt32(message->body, 4)};
        greeting_.push_back(*message);
        break;
      case 'Z':
        if (!authenticated_) {
          return Fail("the server was ready before authenticating");
        }
        greeting_.push_back(*message);
        done_ = true;
        return Next::kReady;
      default:
        return Fail(fmt::format("unexpected message type {} from the server during the login",
                                static_cast<int>(message->type)));
    }
  }
  if (reader_.failed()) {
    return Fail("invalid message length from the server");
  }
  return Next::kRead;
}

ServerLogin::Next ServerLogin::OnAuthentication(const AuthenticationRequest& request) {
  switch (static_cast<AuthCode>(request.code)) {
    case AuthCode::kOk:
      if (exchange_ && !sasl_final_seen_) {
        return Fail("the server accepted the login before proving it knows the verifier");
      }
      authenticated_ = true;
      return Next::kRead;
    case AuthCode::kSasl: {
      if (exchange_) {
        return Fail("the server asked for SASL twice");
      }
      auto mechanisms = SaslMechanisms(request.data);
      if (std::find(mechanisms.begin(), mechanisms.end(), kScram) == mechanisms.end()) {
        return Fail("the server offers no SCRAM-SHA-256");
      }
      if (secret_.kind != StoredSecret::Kind::kScram || client_key_.empty()) {
        return CannotAnswer(kScram);
      }
      exchange_.emplace(client_key_, secret_.scram, scram::RandomNonce());
      output_ += SaslInitialResponse(kScram, exchange_->ClientFirst());
      return Next::kRead;
    }
    case AuthCode::kSaslContinue: {
      if (!exchange_) {
        return Fail("SASL continuation without a SASL exchange");
      }
      auto client_final = exchange_->OnServerFirst(request.data);
      if (!client_final.ok()) {
        verifier_outdated_ = client_final.error().code() == ErrorCode::kConflict;
        return Fail(client_final.error().message());
      }
      output_ += SaslResponse(*client_final);
      return Next::kRead;
    }
    case AuthCode::kSaslFinal: {
      if (!exchange_) {
        return Fail("SASL final message without a SASL exchange");
      }
      if (auto proven = exchange_->OnServerFinal(request.data); !proven.ok()) {
        return Fail(proven.error().message());
      }
      sasl_final_seen_ = true;
      return Next::kRead;
    }
    case AuthCode::kMd5Password:
      if (secret_.kind != StoredSecret::Kind::kMd5) {
        return CannotAnswer("md5");
      }
      if (request.data.size() != kMd5SaltBytes) {
        return Fail("malformed md5 authentication request from the server");
      }
      output_ += PasswordMessage(Md5Response(secret_.md5, request.data));
      return Next::kRead;
    case AuthCode::kCleartextPassword:
      return CannotAnswer("a clear-text password");
  }
  return Fail(fmt::format("the server asks for an authentication the router does not speak ({})",
                          request.code));
}

ServerLogin::Next ServerLogin::CannotAnswer(std::string_view method) {
  std::string user = UserOf(parameters_);
  switch (secret_.kind) {
    case StoredSecret::Kind::kNone:
      // What the server itself answers a role without a password once the client is asked for
      // one: the client learns nothing more through the router.
      server_error_ = ServerError{
          "FATAL", "28P01", fmt::format("password authentication failed for user \"{}\"", user)};
      return Fail(
          fmt::format("the server asks for {} and role \"{}\" has no password", method, user));
    case StoredSecret::Kind::kMd5:
      return Fail(fmt::format(
          "the server asks for {} and the password of role \"{}\" is stored as md5: use md5 in "
          "pg_hba.conf for connections from the router, or set the password again under "
          "password_encryption = scram-sha-256",
          method, user));
    case StoredSecret::Kind::kScram:
      break;
  }
  return Fail(fmt::format(
      "the server asks for {}, which the router cannot answer (it never knows the password, "
      "only the SCRAM key role \"{}\" proved): use scram-sha-256 in pg_hba.conf for connections "
      "from the router",
      method, user));
}

}  // namespace pgha::router
