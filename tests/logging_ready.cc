// Linked into every test binary: spdlog builds its registry on the first log call, and when two
// threads of a test make that call at once, the guard that orders them sits inside spdlog's
// library, where ThreadSanitizer cannot see it, so it reports a race. pgha's programs set their
// logging up in main() before they start a thread; the tests do it here, before main().
#include "common/log.h"

namespace {

const bool kLoggingReady = [] {
  pgha::SetLogLevel("INFO");
  return true;
}();

}  // namespace
