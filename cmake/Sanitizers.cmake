if(PGHA_SANITIZE)
  set(PGHA_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${PGHA_SANITIZER_FLAGS})
  add_link_options(${PGHA_SANITIZER_FLAGS})
endif()

# ThreadSanitizer: the `tsan` preset (clang, so -Wthread-safety checks the annotations too).
if(PGHA_TSAN)
  set(PGHA_TSAN_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
  add_compile_options(${PGHA_TSAN_FLAGS})
  add_link_options(${PGHA_TSAN_FLAGS})
endif()
