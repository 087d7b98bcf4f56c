// What pghactl's verbs reach the outside through, and the pieces of patronictl's dialogue they
// share. pghactl wires etcd, the members' REST APIs, the terminal and the system clock; the unit
// tests wire fakes, so every verb's checks, prompts and messages are tested without servers.
//
// A verb returns an Error for what patronictl reports as "Error: ..." with exit status 1, and an
// exit status otherwise (1 when a member refused what was asked of it).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/table.h"
#include "common/clock.h"
#include "common/result.h"
#include "dcs/dcs.h"
#include "model/cluster.h"

namespace pgha::cli {

struct MemberResponse {
  int status = 0;
  std::string body;
};

// A member's REST API, addressed by the api_url its member key publishes.
class MemberApi {
 public:
  virtual ~MemberApi() = default;
  virtual Result<MemberResponse> Call(const std::string& api_url, const std::string& method,
                                      const std::string& path, const std::string& body) = 0;
};

// The operator's terminal: what the verb prints, and the answers to its questions.
class Terminal {
 public:
  virtual ~Terminal() = default;
  virtual void Print(std::string_view text) = 0;
  virtual void PrintError(std::string_view text) = 0;
  // One line without its newline; nullopt at end of input.
  virtual std::optional<std::string> ReadLine() = 0;
};

struct CtlContext {
  std::string scope;  // the cluster the verb acts on
  dcs::Dcs& dcs;      // that cluster's keys
  MemberApi& api;
  Terminal& terminal;
  const Clock& clock;
};

// The cluster as the DCS holds it; keys that do not decode are reported, not fatal.
Result<model::ClusterSnapshot> ReadCluster(CtlContext& ctx);

// patronictl's member table ("pretty"), as `list` prints it.
void PrintMembers(CtlContext& ctx, const model::ClusterSnapshot& cluster);

// click.prompt: "question [default]: "; an empty answer takes the default; end of input aborts.
Result<std::string> Prompt(CtlContext& ctx, const std::string& question,
                           const std::string& default_value);

// patronictl's confirmations: anything but y / Y / yes fails with `aborted`.
Status Confirm(CtlContext& ctx, const std::string& question, const std::string& aborted);

// "pg-0, pg-1".
std::string MemberNames(const std::vector<const model::Member*>& members);

// "Failed: <verb> for member <name>, status code=503, (<body>)", as patronictl prints it.
void PrintMemberFailure(CtlContext& ctx, const std::string& verb, const model::Member& member,
                        const Result<MemberResponse>& response);

// `at` in the local zone, formatted as strftime's `format`.
std::string FormatLocalTime(WallTime at, const char* format);

// patronictl's timestamp before an answer: local time with microseconds trimmed as Python's
// datetime prints them ("2026-11-25 19:53:34.02203").
std::string LocalTimestamp(WallTime at);

// patronictl's timestamp(0), before `list -t` and on `query`'s message lines: whole seconds.
std::string LocalTimestampSeconds(WallTime at);

// patronictl's parse_scheduled: "now" (or nothing) is immediate; a time without a zone is
// taken in the local zone.
Result<std::optional<WallTime>> ParseScheduled(const std::string& text);

}  // namespace pgha::cli
