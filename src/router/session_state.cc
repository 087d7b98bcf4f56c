#include "router/session_state.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace pgha::router {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// The statements of a query string, split at semicolons outside quotes, trimmed, empty ones
// dropped.
std::vector<std::string_view> Statements(std::string_view sql) {
  std::vector<std::string_view> out;
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i <= sql.size(); ++i) {
    char c = i < sql.size() ? sql[i] : ';';
    if (quote != 0) {
      quote = c == quote ? 0 : quote;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ';') {
      std::string_view statement = Trim(sql.substr(start, i - start));
      if (!statement.empty()) {
        out.push_back(statement);
      }
      start = i + 1;
    }
  }
  return out;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// The name a SET or RESET statement (lower-cased, after the keyword) is about.
std::string SettingName(std::string_view rest) {
  rest = Trim(rest);
  if (StartsWith(rest, "session ")) {
    rest = Trim(rest.substr(8));
  }
  size_t end = rest.find_first_of(" \t\n=");
  return std::string(rest.substr(0, end));
}

// A NUL-terminated string at `at` of `body`; empty when there is none.
std::string CString(std::string_view body, size_t at = 0) {
  if (at >= body.size()) {
    return "";
  }
  size_t end = body.find('\0', at);
  return std::string(
      body.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
}

}  // namespace

void SessionState::Pin(std::string reason) {
  if (!pinned_reason_) {
    pinned_reason_ = std::move(reason);
  }
}

void SessionState::OnClientMessage(char type, std::string_view body) {
  switch (type) {
    case 'Q':
      ++queries_in_flight_;
      OnSql(CString(body));
      break;
    case 'B':  // Bind, Execute, Describe, Flush: answered at the next Sync
    case 'E':
    case 'D':
    case 'H':
      unsynced_ = true;
      break;
    case 'P': {  // Parse: statement name, query, parameter types
      std::string name = CString(body);
      std::string query = CString(body, name.size() + 1);
      if (!name.empty()) {
        prepared_[name] = std::string(body);
      }
      unsynced_ = true;
      OnSql(query);
      break;
    }
    case 'C':  // Close: 'S' statement or 'P' portal, then the name
      if (!body.empty() && body[0] == 'S') {
        prepared_.erase(CString(body, 1));
      }
      unsynced_ = true;
      break;
    case 'S':  // Sync
    case 'F':  // FunctionCall
      ++queries_in_flight_;
      unsynced_ = false;
      break;
    default:
      break;
  }
}

void SessionState::ForgetServer() {
  transaction_status_ = 'I';
  queries_in_flight_ = 0;
  in_copy_ = false;
  unsynced_ = false;
  pending_settings_.clear();
}

void SessionState::OnServerMessage(char type, std::string_view body) {
  switch (type) {
    case 'Z':
      if (!body.empty()) {
        transaction_status_ = body[0];
      }
      queries_in_flight_ = std::max(0, queries_in_flight_ - 1);
      in_copy_ = false;
      break;
    case 'S': {  // ParameterStatus
      std::string name = CString(body);
      parameters_[name] = CString(body, name.size() + 1);
      break;
    }
    case 'C': {  // CommandComplete: a transaction's SETs last only if it commits
      std::string tag = CString(body);
      if (tag == "COMMIT") {
        for (auto& setting : pending_settings_) {
          ApplySetting(std::move(setting.first), std::move(setting.second));
        }
        pending_settings_.clear();
      } else if (tag == "ROLLBACK") {
        pending_settings_.clear();
      }
      break;
    }
    case 'G':  // CopyInResponse
    case 'H':  // CopyOutResponse
    case 'W':  // CopyBothResponse
      in_copy_ = true;
      break;
    default:
      break;
  }
}

void SessionState::ApplySetting(std::string name, std::string statement) {
  std::erase_if(settings_, [&](const auto& setting) { return setting.first == name; });
  if (!statement.empty()) {
    settings_.emplace_back(std::move(name), std::move(statement));
  }
}

void SessionState::OnSql(const std::string& sql) {
  auto statements = Statements(sql);
  bool several = statements.size() > 1;
  for (std::string_view original : statements) {
    std::string s = Lower(original);
    if (StartsWith(s, "create") && (Contains(s, " temp ") || Contains(s, " temporary "))) {
      Pin("a temporary table");
    } else if (Contains(s, "into temp ") || Contains(s, "into temporary ")) {
      Pin("a temporary table");
    } else if (StartsWith(s, "listen")) {
      Pin("LISTEN");
    } else if (StartsWith(s, "declare") && Contains(s, "with hold")) {
      Pin("a cursor WITH HOLD");
    } else if (StartsWith(s, "set session authorization") || StartsWith(s, "set role") ||
               StartsWith(s, "set session role")) {
      Pin("SET SESSION AUTHORIZATION or SET ROLE");
    } else if (StartsWith(s, "prepare ")) {
      Pin("a PREPARE statement");
    } else if (StartsWith(s, "set ") && !StartsWith(s, "set local ") &&
               !StartsWith(s, "set transaction") && !StartsWith(s, "set constraints")) {
      if (several) {
        Pin("a SET inside a multi-statement query");
        continue;
      }
      std::string name = SettingName(s.substr(4));
      // Inside a transaction block the SET counts once the block commits. (A SET that fails
      // outside one is kept, and fails again when replayed.)
      if (transaction_status_ == 'I') {
        ApplySetting(std::move(name), std::string(original));
      } else {
        pending_settings_.emplace_back(std::move(name), std::string(original));
      }
    } else if (s == "reset all" || s == "discard all") {
      settings_.clear();
      if (s == "discard all") {
        prepared_.clear();
      }
    } else if (StartsWith(s, "reset ")) {
      ApplySetting(SettingName(s.substr(6)), "");
    } else if (s == "deallocate all" || s == "deallocate prepare all") {
      prepared_.clear();
    } else if (StartsWith(s, "deallocate ")) {
      std::string_view rest = Trim(std::string_view(s).substr(11));
      if (StartsWith(rest, "prepare ")) {
        rest = Trim(rest.substr(8));
      }
      prepared_.erase(std::string(rest));
    }
    if (Contains(s, "pg_advisory_lock") || Contains(s, "pg_try_advisory_lock")) {
      Pin("a session-level advisory lock");
    }
  }
}

bool EndsTransactionBlock(std::string_view sql) {
  auto statements = Statements(sql);
  if (statements.size() != 1) {
    return false;
  }
  std::string s = Lower(statements[0]);
  for (std::string_view verb : {"rollback", "abort", "commit", "end"}) {
    if (s == verb || s == std::string(verb) + " work" || s == std::string(verb) + " transaction") {
      return true;
    }
  }
  return false;
}

std::vector<std::string> SessionState::ReplayStatements() const {
  std::vector<std::string> out;
  for (const auto& setting : settings_) {
    out.push_back(setting.second);
  }
  return out;
}

}  // namespace pgha::router
