// Clang's thread-safety analysis (-Wthread-safety, on in every clang build: cmake/Warnings.cmake):
// a member marked GUARDED_BY(mu) may only be touched with `mu` held, a function marked
// REQUIRES(mu) only called with it held. The `tsan` preset builds with clang, so these are checked
// on every `make test`; GCC ignores them.
#pragma once

#if defined(__clang__)
#define PGHA_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define PGHA_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) PGHA_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY PGHA_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) PGHA_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) PGHA_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) PGHA_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) PGHA_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) PGHA_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) PGHA_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) PGHA_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS PGHA_THREAD_ANNOTATION(no_thread_safety_analysis)
