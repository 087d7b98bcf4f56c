// The Controller of a running node: reads and writes go straight to the DCS; restarts go to the
// agent.
#pragma once

#include <functional>

#include "api/controller.h"
#include "dcs/dcs.h"

namespace pgha::api {

class DcsController final : public Controller {
 public:
  // `dcs` must be safe to use from the REST API's threads (pgha gives it its own uncached
  // instance, apart from the HA loop's).
  DcsController(dcs::Dcs& dcs, std::function<Status(std::chrono::seconds)> restart,
                std::function<Status(bool)> reinitialize)
      : dcs_(dcs), restart_(std::move(restart)), reinitialize_(std::move(reinitialize)) {}
  Result<model::ClusterSnapshot> ReadCluster() override { return dcs_.LoadCluster(); }
  Result<bool> WriteConfig(const std::string& value, int64_t mod_revision) override {
    return dcs_.SetConfigValue(value, mod_revision);
  }
  Status RestartPostgres(std::chrono::seconds timeout) override { return restart_(timeout); }
  Status Reinitialize(bool force) override { return reinitialize_(force); }

 private:
  dcs::Dcs& dcs_;
  std::function<Status(std::chrono::seconds)> restart_;
  std::function<Status(bool)> reinitialize_;
};

}  // namespace pgha::api
