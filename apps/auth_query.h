// The session mode's auth query over libpq: how pgha-router fetches a role's stored password from
// the primary (router/session_mode.h's SecretLookup). It lives with the programs, not in
// src/router, because the router's library knows no PostgreSQL client (scripts/check_deps.sh).
#pragma once

#include "config/config.h"
#include "router/session_mode.h"
#include "router/settings.h"

namespace pgha::apps {

// Runs settings.auth_query on the primary as settings.auth_user (by default the postgresql
// superuser of the same file). The role's stored password (SCRAM verifier, md5 hash or NULL)
// comes back as a StoredSecret; no row, or a secret in a form the router cannot use, is nullopt,
// which the router treats as any wrong password.
router::SessionMode::SecretLookup MakeAuthQueryLookup(const config::Config& config,
                                                      const router::RouterSettings& settings);

}  // namespace pgha::apps
