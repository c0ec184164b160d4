// hiredis (Debian's libhiredis-dev): the Redis client the cluster broker is built on, so
// Herald never speaks RESP by hand. Blocking connections only: each one is owned by one
// thread of the broker, never by a loop.
#ifndef HERALD_CHIREDIS_SHIM_H
#define HERALD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

/// Queues a command without waiting for its reply (pipelining); REDIS_OK or REDIS_ERR.
static inline int herald_redis_append(redisContext *context, int argc, const char **argv, const size_t *lengths) {
    return redisAppendCommandArgv(context, argc, argv, lengths);
}

/// Sends what is queued and reads the next reply (NULL on an I/O error).
static inline redisReply *herald_redis_next_reply(redisContext *context) {
    void *reply = NULL;
    if (redisGetReply(context, &reply) != REDIS_OK) return NULL;
    return (redisReply *)reply;
}

#endif
