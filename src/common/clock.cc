#include "common/clock.h"

namespace pgha {

SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}

}  // namespace pgha
