# Warnings are errors on our own targets only; third-party headers are included as system headers.
add_library(pgha_warnings INTERFACE)
target_compile_options(pgha_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wimplicit-fallthrough -Werror
  $<$<CXX_COMPILER_ID:Clang>:-Wthread-safety>)
