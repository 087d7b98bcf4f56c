#include "router/client_login.h"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "router/pg_bytes.h"

namespace pgha::router {
namespace {

constexpr std::string_view kScram = "SCRAM-SHA-256";
// PostgreSQL's limit on an authentication message (PG_MAX_AUTH_TOKEN_LENGTH).
constexpr size_t kMaxAuthMessage = 65535;
// The protocol minor version the router speaks (3.0), as PostgreSQL 15 does.
constexpr uint32_t kMinorVersion = 0;

// NegotiateProtocolVersion: the newest minor version spoken, and the options not recognised.
std::string NegotiateProtocolVersion(const std::vector<std::string>& unrecognised) {
  std::string body;
  PutInt32(body, kMinorVersion);
  PutInt32(body, static_cast<uint32_t>(unrecognised.size()));
  for (const auto& name : unrecognised) {
    body += name;
    body.push_back('\0');
  }
  return Frame('v', body);
}

bool IsFalse(const std::string& value) {
  return value == "false" || value == "0" || value == "off" || value == "no";
}

}  // namespace

ClientLogin::ClientLogin(bool tls_available)
    : tls_available_(tls_available), reader_(kMaxAuthMessage) {}

std::string ClientLogin::TakeOutput() { return std::exchange(output_, std::string()); }

ClientLogin::Next ClientLogin::Refuse(std::string_view sqlstate, std::string_view message) {
  output_ += FatalErrorResponse(sqlstate, message);
  stage_ = Stage::kDone;
  return Next::kClose;
}

ClientLogin::Next ClientLogin::Feed(std::string_view bytes) {
  switch (stage_) {
    case Stage::kOpening:
      opening_.append(bytes);
      return Opening();
    case Stage::kSecret:
      reader_.Feed(bytes);  // sent early; read once the secret is known
      return Next::kLookUpSecret;
    case Stage::kSaslInitial:
    case Stage::kSaslResponse:
    case Stage::kMd5Response:
      reader_.Feed(bytes);
      return Authentication();
    case Stage::kDone:
      break;
  }
  return Next::kClose;
}

ClientLogin::Next ClientLogin::Opening() {
  while (true) {
    auto opening = ParseClientOpening(opening_);
    switch (opening.kind) {
      case ClientOpening::kIncomplete:
        return Next::kRead;
      case ClientOpening::kInvalid:
        return Refuse("08P01", "invalid startup packet");
      case ClientOpening::kSslRequest:
        if (tls_answered_) {
          return Refuse("08P01", "SSL negotiation asked for twice");
        }
        tls_answered_ = true;
        opening_.erase(0, opening.length);
        if (tls_available_) {
          if (!opening_.empty()) {
            // What follows must come encrypted: bytes sent in the clear after the request could
            // have been put there by someone in the middle.
            return Refuse("08P01", "received unencrypted data after SSL request");
          }
          output_ += 'S';
          return Next::kStartTls;
        }
        output_ += 'N';
        continue;
      case ClientOpening::kGssEncRequest:
        if (gss_answered_) {
          return Refuse("08P01", "GSSAPI encryption asked for twice");
        }
        gss_answered_ = true;
        opening_.erase(0, opening.length);
        output_ += 'N';
        continue;
      case ClientOpening::kCancelRequest:
        cancel_key_ = CancelRequestKey(opening_.substr(0, opening.length));
        stage_ = Stage::kDone;
        return Next::kCancel;
      case ClientOpening::kStartup: {
        std::string packet = opening_.substr(0, opening.length);
        std::string rest = opening_.substr(opening.length);
        opening_.clear();
        Next next = Startup(packet);
        if (next == Next::kLookUpSecret && !rest.empty()) {
          reader_.Feed(rest);
        }
        return next;
      }
    }
  }
}

ClientLogin::Next ClientLogin::Startup(std::string_view packet) {
  uint32_t minor = GetInt32(packet, 4) & 0xffff;
  std::vector<std::string> unrecognised;
  size_t at = 8;
  while (true) {
    size_t name_end = packet.find('\0', at);
    if (name_end == std::string_view::npos) {
      return Refuse("08P01", "invalid startup packet layout: expected terminator as last byte");
    }
    std::string name(packet.substr(at, name_end - at));
    at = name_end + 1;
    if (name.empty()) {
      break;
    }
    size_t value_end = packet.find('\0', at);
    if (value_end == std::string_view::npos) {
      return Refuse("08P01", "invalid startup packet layout: expected terminator as last byte");
    }
    std::string value(packet.substr(at, value_end - at));
    at = value_end + 1;
    if (name.rfind("_pq_.", 0) == 0) {
      unrecognised.push_back(name);
      continue;
    }
    if (name == "user") {
      user_ = value;
    } else if (name == "database") {
      database_ = value;
    } else if (name == "replication" && !IsFalse(value)) {
      return Refuse("0A000",
                    "pgha-router: replication connections are not carried in session mode; "
                    "connect to the member itself");
    }
    parameters_.emplace_back(std::move(name), std::move(value));
  }
  if (user_.empty()) {
    return Refuse("28000", "no PostgreSQL user name specified in startup packet");
  }
  if (database_.empty()) {
    database_ = user_;
  }
  if (minor > kMinorVersion || !unrecognised.empty()) {
    output_ += NegotiateProtocolVersion(unrecognised);
  }
  stage_ = Stage::kSecret;
  return Next::kLookUpSecret;
}

ClientLogin::Next ClientLogin::OnSecret(std::optional<StoredSecret> secret) {
  if (stage_ != Stage::kSecret) {
    return Next::kClose;
  }
  role_known_ = secret.has_value();
  if (role_known_) {
    secret_ = std::move(*secret);
  }
  if (role_known_ && secret_.kind == StoredSecret::Kind::kNone) {
    // No password to check: a server lets the role in only if its pg_hba.conf trusts the
    // router's connection, and the router's login to it finds out.
    stage_ = Stage::kDone;
    return Next::kAuthenticated;
  }
  if (role_known_ && secret_.kind == StoredSecret::Kind::kMd5) {
    md5_salt_ = scram::RandomBytes(kMd5SaltBytes);
    output_ += AuthenticationMd5Password(md5_salt_);
    stage_ = Stage::kMd5Response;
    return Authentication();
  }
  exchange_.emplace(role_known_ ? secret_.scram : scram::MockVerifier(user_), scram::RandomNonce());
  output_ += AuthenticationSasl({std::string(kScram)});
  stage_ = Stage::kSaslInitial;
  return Authentication();
}

ClientLogin::Next ClientLogin::Authentication() {
  const std::string failed = fmt::format("password authentication failed for user \"{}\"", user_);
  while (auto message = reader_.Next()) {
    if (message->type == 'X') {  // Terminate: the client gave up (psql asking for a password)
      stage_ = Stage::kDone;
      return Next::kClose;
    }
    if (message->type != 'p') {
      return Refuse("08P01", fmt::format("expected {} response, got message type {}",
                                         stage_ == Stage::kMd5Response ? "password" : "SASL",
                                         static_cast<int>(message->type)));
    }
    if (stage_ == Stage::kMd5Response) {
      auto answer = ParsePasswordMessage(*message);
      if (!answer) {
        return Refuse("08P01", "invalid password packet");
      }
      std::string expected = Md5Response(secret_.md5, md5_salt_);
      // In constant time: how much of an answer matched must not show in when it is refused.
      if (answer->size() != expected.size() ||
          CRYPTO_memcmp(answer->data(), expected.data(), expected.size()) != 0) {
        return Refuse("28P01", failed);
      }
      stage_ = Stage::kDone;
      return Next::kAuthenticated;
    }
    if (stage_ == Stage::kSaslInitial) {
      auto initial = ParseSaslInitialResponse(*message);
      if (!initial) {
        return Refuse("08P01", "malformed SASLInitialResponse message");
      }
      if (initial->mechanism != kScram) {
        return Refuse("28000", "client selected an invalid SASL authentication mechanism");
      }
      auto server_first = exchange_->OnClientFirst(initial->data);
      if (!server_first.ok()) {
        return Refuse("08P01", server_first.error().message());
      }
      output_ += AuthenticationSaslContinue(*server_first);
      stage_ = Stage::kSaslResponse;
      continue;
    }
    auto server_final = exchange_->OnClientFinal(message->body);
    if (!server_final.ok()) {
      return server_final.error().code() == ErrorCode::kPermissionDenied
                 ? Refuse("28P01", failed)
                 : Refuse("08P01", server_final.error().message());
    }
    if (!role_known_) {
      return Refuse("28P01", failed);  // a mock verifier matches no proof; never let it through
    }
    output_ += AuthenticationSaslFinal(*server_final);
    client_key_ = exchange_->client_key();
    stage_ = Stage::kDone;
    return Next::kAuthenticated;
  }
  if (reader_.failed()) {
    return Refuse("08P01", "invalid message length");
  }
  return Next::kRead;
}

}  // namespace pgha::router
