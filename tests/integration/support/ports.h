// Ephemeral loopback ports for test servers, so tests run beside a topology on fixed ports.
#pragma once

namespace pgha::testing {

// A port that was free on 127.0.0.1 a moment ago (the kernel's pick). Ports handed out by this
// process are never handed out twice.
int FreePort();

}  // namespace pgha::testing
