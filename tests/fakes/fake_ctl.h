// Fakes for pghactl's verbs (src/cli/ctl.h): a terminal with scripted answers that keeps what
// was printed, and members' REST APIs that a test scripts and that record every call.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "cli/ctl.h"
#include "fakes/compat_data.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_dcs.h"

namespace pgha::testing {

class FakeTerminal final : public cli::Terminal {
 public:
  explicit FakeTerminal(std::vector<std::string> answers = {})
      : answers_(answers.begin(), answers.end()) {}
  void Print(std::string_view text) override { out_.append(text); }
  void PrintError(std::string_view text) override { err_.append(text); }
  std::optional<std::string> ReadLine() override {
    if (answers_.empty()) {
      return std::nullopt;
    }
    std::string answer = answers_.front();
    answers_.pop_front();
    out_ += answer + "\n";  // as the operator's echo shows it
    return answer;
  }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  size_t unread_answers() const { return answers_.size(); }

 private:
  std::deque<std::string> answers_;
  std::string out_;
  std::string err_;
};

struct ApiCall {
  std::string api_url;
  std::string method;
  std::string path;
  std::string body;
};

class FakeMemberApi final : public cli::MemberApi {
 public:
  using Handler = std::function<Result<cli::MemberResponse>(const ApiCall&)>;
  // Without a handler every call is refused, as by a member that is down.
  void SetHandler(Handler handler) { handler_ = std::move(handler); }
  Result<cli::MemberResponse> Call(const std::string& api_url, const std::string& method,
                                   const std::string& path, const std::string& body) override {
    calls_.push_back({api_url, method, path, body});
    if (!handler_) {
      return Error::Unavailable("connection refused");
    }
    return handler_(calls_.back());
  }
  const std::vector<ApiCall>& calls() const { return calls_; }
  // The calls with this method and path, in order.
  std::vector<ApiCall> CallsTo(const std::string& method, const std::string& path) const {
    std::vector<ApiCall> out;
    for (const auto& c : calls_) {
      if (c.method == method && c.path == path) {
        out.push_back(c);
      }
    }
    return out;
  }

 private:
  Handler handler_;
  std::vector<ApiCall> calls_;
};

// A cluster for a verb to act on: the keys of a golden dump (tests/compat/patroni-3.0.2) in a
// FakeDcs, members whose REST APIs the test scripts, and a clock the test moves.
struct CtlCluster {
  // No keys at all with an empty file name.
  explicit CtlCluster(const std::string& dump_file) {
    for (const auto& kv :
         dump_file.empty() ? std::vector<model::KeyValue>{} : ReadDcsDump(dump_file)) {
      dcs.Put(kv.key, kv.value);
    }
  }
  cli::CtlContext Context(FakeTerminal& terminal) {
    return cli::CtlContext{"pg-ha", dcs, api, terminal, clock};
  }
  FakeClock clock;
  FakeDcs dcs{clock, "pghactl"};
  FakeMemberApi api;
};

}  // namespace pgha::testing
