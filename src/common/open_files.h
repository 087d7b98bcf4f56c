// The open-file limit of a process that serves many connections (the REST API, the router).
#pragma once

#include <cstddef>

namespace pgha {

// Every connection is a descriptor: raises the soft limit to the hard limit, so a connection
// bound, not the default soft limit of 1024, decides who is refused. Returns how many of
// `wanted` descriptors fit, keeping room for the rest of the process (PostgreSQL connections,
// logs, etcd).
size_t RaiseOpenFileLimit(size_t wanted);

}  // namespace pgha
