#include "api/http/request_parser.h"

#include <vector>

#include "common/strings.h"

namespace pgha::api::http {

namespace {

constexpr size_t kMaxTargetBytes = 8 * 1024;

bool IsTokenChar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view text) {
  if (text.empty()) {
    return false;
  }
  for (char c : text) {
    if (!IsTokenChar(c)) {
      return false;
    }
  }
  return true;
}

std::string_view TrimWhitespace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> Lines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    size_t end = head.find('\n');
    std::string_view line = head.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    head.remove_prefix(end + 1);
  }
  return lines;
}

}  // namespace

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out += static_cast<char>(high * 16 + low);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && c == '+') ? ' ' : c;
  }
  return out;
}

RequestParser::State RequestParser::Fail(int status, std::string message) {
  state_ = State::kFailed;
  error_status_ = status;
  error_message_ = std::move(message);
  buffer_.clear();
  return state_;
}

RequestParser::State RequestParser::Feed(std::string_view bytes) {
  if (state_ != State::kNeedMore) {
    return state_;
  }
  buffer_.append(bytes);
  if (!head_done_) {
    // RFC 9112 asks for CRLF; a bare LF is tolerated, as Python's http.server (Patroni) does.
    size_t crlf = buffer_.find("\r\n\r\n", head_scan_from_);
    size_t lf = buffer_.find("\n\n", head_scan_from_);
    size_t head_end = std::min(crlf, lf);
    if (head_end == std::string::npos) {
      // Next time, only what could end a terminator that starts in the new bytes: a client
      // sending a byte at a time must not make every read rescan the whole head.
      head_scan_from_ = buffer_.size() >= 3 ? buffer_.size() - 3 : 0;
      if (buffer_.size() > limits_.max_head_bytes) {
        return buffer_.find('\n') == std::string::npos
                   ? Fail(414, "request URI too long")
                   : Fail(431, "request header fields too large");
      }
      return state_;
    }
    if (head_end > limits_.max_head_bytes) {
      return Fail(431, "request header fields too large");
    }
    body_start_ = head_end + (head_end == crlf ? 4 : 2);
    if (ParseHead(std::string_view(buffer_).substr(0, head_end)) == State::kFailed) {
      return state_;
    }
    head_done_ = true;
  }
  if (buffer_.size() - body_start_ >= content_length_) {
    request_.body = buffer_.substr(body_start_, content_length_);
    buffer_.clear();
    state_ = State::kComplete;
  }
  return state_;
}

RequestParser::State RequestParser::ParseHead(std::string_view head) {
  auto lines = Lines(head);
  size_t first = 0;
  while (first < lines.size() && lines[first].empty()) ++first;  // stray CRLFs before a request
  if (first == lines.size()) {
    return Fail(400, "bad request");
  }
  std::string_view request_line = lines[first];
  size_t sp1 = request_line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(400, "bad request");
  }
  std::string_view method = request_line.substr(0, sp1);
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = request_line.substr(sp2 + 1);
  if (!IsToken(method)) {
    return Fail(400, "bad request");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return version.substr(0, 5) == "HTTP/" ? Fail(505, "HTTP version not supported")
                                           : Fail(400, "bad request");
  }
  if (target.size() > kMaxTargetBytes) {
    return Fail(414, "request URI too long");
  }
  // The absolute form (a proxy's request) names the same path after the authority.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      size_t slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  if (target.empty() || target.front() != '/') {
    return Fail(400, "bad request");
  }
  request_.method = std::string(method);
  size_t question = target.find('?');
  request_.path = PercentDecode(target.substr(0, question), false);
  if (question != std::string_view::npos) {
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      if (!pair.empty()) {
        size_t eq = pair.find('=');
        request_.query.emplace(
            PercentDecode(pair.substr(0, eq), true),
            eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), true));
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  for (size_t i = first + 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t colon = line.find(':');
    // No obsolete line folding, no space before the colon (RFC 9112 §5): both smuggle headers.
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      return Fail(400, "bad request");
    }
    std::string name = ToLower(std::string(line.substr(0, colon)));
    std::string value(TrimWhitespace(line.substr(colon + 1)));
    auto [it, inserted] = request_.headers.emplace(name, value);
    if (!inserted) {
      if (name == "content-length" && it->second != value) {
        return Fail(400, "bad request");
      }
      if (name != "content-length") {
        it->second += ", " + value;
      }
    }
  }
  if (request_.headers.count("transfer-encoding")) {
    return Fail(501, "request bodies without Content-Length are not supported");
  }
  if (auto length = request_.Header("content-length")) {
    if (length->empty() || length->size() > 18 ||
        length->find_first_not_of("0123456789") != std::string::npos) {
      return Fail(400, "bad request");
    }
    content_length_ = std::stoull(*length);
    if (content_length_ > limits_.max_body_bytes) {
      return Fail(413, "request body too large");
    }
  }
  if (auto expect = request_.Header("expect")) {
    expects_continue_ = ToLower(*expect) == "100-continue";
  }
  return state_;
}

}  // namespace pgha::api::http
