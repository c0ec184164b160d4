// hiredis (Debian's libhiredis-dev): the Redis client the cluster broker is built on, so
// Herald never speaks RESP by hand. Blocking connections only: each one is owned by one
// thread of the broker, never by a loop.
#ifndef HERALD_CHIREDIS_SHIM_H
#define HERALD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

/// Runs a command given as `argc` binary-safe arguments; the reply is the caller's to free
/// with `freeReplyObject` (NULL on an I/O error: the context's `errstr` says why).
static inline redisReply *herald_redis_command(redisContext *context, int argc, const char **argv, const size_t *lengths) {
    return (redisReply *)redisCommandArgv(context, argc, argv, lengths);
}

#endif
