// FakePeers: the other members' REST answers as a test sets them. A member with no status set
// is unreachable; failsafe answers are per REST URL (no answer: refused).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ha/peer_client.h"

namespace pgha::testing {

class FakePeers final : public ha::PeerClient {
 public:
  void SetStatus(const ha::PeerStatus& status) {
    std::lock_guard<std::mutex> lock(mutex_);
    statuses_[status.name] = status;
  }
  void SetUnreachable(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    statuses_.erase(name);
  }
  void SetFailsafeAnswer(const std::string& api_url, bool accepted) {
    std::lock_guard<std::mutex> lock(mutex_);
    failsafe_answers_[api_url] = accepted;
  }
  std::vector<std::string> failsafe_posts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return failsafe_posts_;
  }

  std::vector<ha::PeerStatus> FetchAll(const std::vector<model::Member>& members) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<ha::PeerStatus> out;
    for (const auto& member : members) {
      auto it = statuses_.find(member.name);
      if (it != statuses_.end()) {
        out.push_back(it->second);
      } else {
        ha::PeerStatus unreachable;
        unreachable.name = member.name;
        out.push_back(unreachable);
      }
    }
    return out;
  }

  std::vector<bool> PostFailsafe(const std::vector<std::string>& api_urls,
                                 const std::string& body) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<bool> out;
    for (const auto& url : api_urls) {
      failsafe_posts_.push_back(url + " " + body);
      auto it = failsafe_answers_.find(url);
      out.push_back(it != failsafe_answers_.end() && it->second);
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;  // guards everything below
  std::map<std::string, ha::PeerStatus> statuses_;
  std::map<std::string, bool> failsafe_answers_;
  std::vector<std::string> failsafe_posts_;
};

}  // namespace pgha::testing
