#include "router/pg_messages.h"

#include "router/pg_bytes.h"

namespace pgha::router {

void MessageReader::Feed(std::string_view bytes) {
  if (failed_) {
    return;
  }
  buffer_.erase(0, consumed_);
  consumed_ = 0;
  buffer_.append(bytes);
}

std::optional<MessageView> MessageReader::NextView() {
  std::string_view rest = std::string_view(buffer_).substr(consumed_);
  if (failed_ || rest.size() < 5) {
    return std::nullopt;
  }
  uint32_t length = GetInt32(rest, 1);
  if (length < 4 || length > max_length_) {
    failed_ = true;
    buffer_.clear();
    consumed_ = 0;
    return std::nullopt;
  }
  if (rest.size() < 1 + static_cast<size_t>(length)) {
    return std::nullopt;
  }
  consumed_ += 1 + static_cast<size_t>(length);
  return MessageView{rest[0], rest.substr(5, length - 4), rest.substr(0, 1 + length)};
}

std::optional<Message> MessageReader::Next() {
  auto view = NextView();
  if (!view) {
    return std::nullopt;
  }
  return Message{view->type, std::string(view->body)};
}

std::string Frame(char type, std::string_view body) {
  std::string out(1, type);
  PutInt32(out, static_cast<uint32_t>(body.size() + 4));
  out.append(body);
  return out;
}

std::string StartupMessage(const std::vector<std::pair<std::string, std::string>>& parameters) {
  std::string body;
  PutInt32(body, 3u << 16);
  for (const auto& [name, value] : parameters) {
    body.append(name).push_back('\0');
    body.append(value).push_back('\0');
  }
  body.push_back('\0');
  std::string out;
  PutInt32(out, static_cast<uint32_t>(body.size() + 4));
  return out + body;
}

namespace {

std::string Authentication(AuthCode code, std::string_view data) {
  std::string body;
  PutInt32(body, static_cast<uint32_t>(code));
  body.append(data);
  return Frame('R', body);
}

}  // namespace

std::string AuthenticationOk() { return Authentication(AuthCode::kOk, ""); }

std::string AuthenticationSasl(const std::vector<std::string>& mechanisms) {
  std::string data;
  for (const auto& mechanism : mechanisms) {
    data.append(mechanism).push_back('\0');
  }
  data.push_back('\0');
  return Authentication(AuthCode::kSasl, data);
}

std::string AuthenticationSaslContinue(std::string_view data) {
  return Authentication(AuthCode::kSaslContinue, data);
}

std::string AuthenticationSaslFinal(std::string_view data) {
  return Authentication(AuthCode::kSaslFinal, data);
}

std::string AuthenticationMd5Password(std::string_view salt) {
  return Authentication(AuthCode::kMd5Password, salt);
}

std::optional<AuthenticationRequest> ParseAuthentication(const Message& message) {
  if (message.type != 'R' || message.body.size() < 4) {
    return std::nullopt;
  }
  return AuthenticationRequest{static_cast<int32_t>(GetInt32(message.body, 0)),
                               message.body.substr(4)};
}

std::vector<std::string> SaslMechanisms(std::string_view data) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < data.size()) {
    size_t end = data.find('\0', at);
    if (end == std::string_view::npos || end == at) {
      break;  // the empty name ends the list; an unterminated one is not a name
    }
    out.emplace_back(data.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::string SaslInitialResponse(std::string_view mechanism, std::string_view data) {
  std::string body(mechanism);
  body.push_back('\0');
  PutInt32(body, static_cast<uint32_t>(data.size()));
  body.append(data);
  return Frame('p', body);
}

std::string SaslResponse(std::string_view data) { return Frame('p', data); }

std::string PasswordMessage(std::string_view password) {
  std::string body(password);
  body.push_back('\0');
  return Frame('p', body);
}

std::optional<std::string> ParsePasswordMessage(const Message& message) {
  if (message.type != 'p' || message.body.empty() || message.body.back() != '\0') {
    return std::nullopt;
  }
  std::string password = message.body.substr(0, message.body.size() - 1);
  if (password.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  return password;
}

std::optional<SaslInitial> ParseSaslInitialResponse(const Message& message) {
  if (message.type != 'p') {
    return std::nullopt;
  }
  size_t end = message.body.find('\0');
  if (end == std::string::npos || end == 0 || message.body.size() < end + 5) {
    return std::nullopt;
  }
  SaslInitial initial{message.body.substr(0, end), ""};
  auto length = static_cast<int32_t>(GetInt32(message.body, end + 1));
  size_t data_at = end + 5;
  if (length == -1) {
    return data_at == message.body.size() ? std::optional(initial) : std::nullopt;
  }
  if (length < 0 || static_cast<size_t>(length) != message.body.size() - data_at) {
    return std::nullopt;
  }
  initial.data = message.body.substr(data_at);
  return initial;
}

std::optional<ServerError> ParseErrorResponse(const Message& message) {
  if (message.type != 'E') {
    return std::nullopt;
  }
  ServerError error;
  bool have_sqlstate = false, have_message = false;  // a field given twice: the first counts
  size_t at = 0;
  while (at < message.body.size() && message.body[at] != '\0') {
    char code = message.body[at];
    size_t end = message.body.find('\0', at + 1);
    if (end == std::string::npos) {
      break;
    }
    std::string value = message.body.substr(at + 1, end - at - 1);
    if (code == 'V' || (code == 'S' && error.severity.empty())) {
      error.severity = value;  // 'V' is never translated; 'S' may be
    }
    if (code == 'C' && !have_sqlstate) {
      error.sqlstate = std::move(value);
      have_sqlstate = true;
    } else if (code == 'M' && !have_message) {
      error.message = std::move(value);
      have_message = true;
    }
    at = end + 1;
  }
  return error;
}

bool IsFatalError(const Message& message) {
  auto error = ParseErrorResponse(message);
  return error && (error->severity == "FATAL" || error->severity == "PANIC");
}

}  // namespace pgha::router
