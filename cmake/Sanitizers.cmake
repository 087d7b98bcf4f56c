if(PGHA_SANITIZE)
  set(PGHA_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${PGHA_SANITIZER_FLAGS})
  add_link_options(${PGHA_SANITIZER_FLAGS})
  # Executables linked as position-dependent: a PIE test binary of this size spends about 0.2 s
  # of each start applying 2.4 million relocations, and ctest starts it once per test (~475).
  add_link_options($<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:-no-pie>)
endif()

# ThreadSanitizer: the `tsan` preset (clang, so -Wthread-safety checks the annotations too).
if(PGHA_TSAN)
  set(PGHA_TSAN_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
  add_compile_options(${PGHA_TSAN_FLAGS})
  add_link_options(${PGHA_TSAN_FLAGS})
endif()
