// Patroni's callbacks (postgresql.callbacks): `<command words...> <action> <role> <scope>`, run
// off the HA loop. As in Patroni, one callback runs at a time and a new one kills the one still
// running (with its process group); on_reload callbacks have a slot of their own, so a reload
// never cancels an on_role_change.
//
// Thread-safety: Call() from any thread.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace pgha::agent {

class CallbackRunner {
 public:
  explicit CallbackRunner(std::string scope);
  ~CallbackRunner();
  CallbackRunner(const CallbackRunner&) = delete;
  CallbackRunner& operator=(const CallbackRunner&) = delete;

  // Runs callbacks[action] (if configured) with the action, the role ("master", "replica") and
  // the scope appended. Returns at once.
  void Call(const std::map<std::string, std::string>& callbacks, const std::string& action,
            const std::string& role);

 private:
  // pending and running are guarded by mutex_ (reached through a reference, which the
  // analysis cannot follow); worker is set in the constructor and joined in the destructor.
  struct Slot {
    std::optional<std::vector<std::string>> pending;
    pid_t running = 0;  // process group of the callback running now
    std::thread worker;
  };
  void Work(Slot& slot);

  std::string scope_;
  Mutex mutex_;
  std::condition_variable_any wake_;
  bool stopping_ GUARDED_BY(mutex_) = false;
  Slot main_;
  Slot reload_;
};

}  // namespace pgha::agent
