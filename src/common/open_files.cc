#include "common/open_files.h"

#include <sys/resource.h>

namespace pgha {

size_t RaiseOpenFileLimit(size_t wanted) {
  constexpr size_t kReserved = 128;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return wanted;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &limit);
    (void)getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > wanted + kReserved) {
    return wanted;
  }
  return limit.rlim_cur > 2 * kReserved ? limit.rlim_cur - kReserved : limit.rlim_cur / 2;
}

}  // namespace pgha
