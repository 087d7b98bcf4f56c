#include "cli/remove.h"

namespace pgha::cli {
namespace {

Result<std::string> Ask(CtlContext& ctx, const std::string& question) {
  ctx.terminal.Print(question + ": ");
  auto answer = ctx.terminal.ReadLine();
  if (!answer) {
    return Error::Invalid("Aborted!");
  }
  return *answer;
}

}  // namespace

Result<int> RemoveCluster(CtlContext& ctx) {
  auto cluster = ReadCluster(ctx);
  if (!cluster.ok()) {
    return cluster.error();
  }
  PrintMembers(ctx, *cluster);
  auto name = Ask(ctx, "Please confirm the cluster name to remove");
  if (!name.ok()) {
    return name.error();
  }
  if (*name != ctx.scope) {
    return Error::Invalid("Cluster names specified do not match");
  }
  const std::string aware = "Yes I am aware";
  auto typed = Ask(ctx, "You are about to remove all information in DCS for " + ctx.scope +
                            ", please type: \"" + aware + "\"");
  if (!typed.ok()) {
    return typed.error();
  }
  if (*typed != aware) {
    return Error::Invalid("You did not exactly type \"" + aware + "\"");
  }
  if (cluster->leader && !cluster->leader->name.empty()) {
    auto leader =
        Ask(ctx, "This cluster currently is healthy. Please specify the leader name to continue");
    if (!leader.ok()) {
      return leader.error();
    }
    if (*leader != cluster->leader->name) {
      return Error::Invalid("You did not specify the current leader of the cluster");
    }
  }
  if (auto deleted = ctx.dcs.DeleteCluster(); !deleted.ok()) {
    return Error::Unavailable("could not remove the cluster: " + deleted.error().message());
  }
  return 0;
}

}  // namespace pgha::cli
