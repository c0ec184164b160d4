// The one C boundary of Herald: libwebsockets and the few OpenSSL calls Herald needs.
// Anything Swift cannot import (macros, varargs) is re-exposed here with a herald_ prefix.
#ifndef HERALD_CLIBWEBSOCKETS_SHIM_H
#define HERALD_CLIBWEBSOCKETS_SHIM_H

#include <libwebsockets.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <malloc.h>

/// Bytes of headroom lws needs before every buffer passed to lws_write().
static const int herald_lws_pre = LWS_PRE;

/// lws_write() mode for bytes sent as they are on a raw socket.
static const enum lws_write_protocol herald_write_raw = LWS_WRITE_RAW;

/// Log level bits (the LLL_ macros).
static const int herald_lll_err = LLL_ERR;
static const int herald_lll_warn = LLL_WARN;
static const int herald_lll_notice = LLL_NOTICE;
static const int herald_lll_info = LLL_INFO;
static const int herald_lll_user = LLL_USER;

/// Context creation options used by Herald.
static const unsigned long long herald_opt_validate_utf8 = LWS_SERVER_OPTION_VALIDATE_UTF8;
static const unsigned long long herald_opt_disable_ipv6 = LWS_SERVER_OPTION_DISABLE_IPV6;
/// Every accepted connection is a raw socket bound to protocols[0]: Herald speaks HTTP/1.1
/// and WebSocket itself (lws 4.1's HTTP server replays buffered pipelined input).
static const unsigned long long herald_opt_only_raw = LWS_SERVER_OPTION_ONLY_RAW;

/// A periodic callback on the service thread: lws' scheduler calls `fire(owner)` every
/// `period_us` microseconds once started. The struct must stay at a fixed address until
/// it is stopped.
typedef struct herald_ticker {
    lws_sorted_usec_list_t sul; /* first member: the scheduler hands back its address */
    struct lws_context *context;
    lws_usec_t period_us;
    void (*fire)(void *owner);
    void *owner;
} herald_ticker;

static inline void herald_ticker_fired(lws_sorted_usec_list_t *sul) {
    herald_ticker *ticker = (herald_ticker *)sul;
    ticker->fire(ticker->owner);
    lws_sul_schedule(ticker->context, 0, &ticker->sul, herald_ticker_fired, ticker->period_us);
}

/// Schedules the first tick; call on the service thread or before servicing starts.
static inline void herald_ticker_start(herald_ticker *ticker) {
    lws_sul_schedule(ticker->context, 0, &ticker->sul, herald_ticker_fired, ticker->period_us);
}

/// Removes the ticker from the scheduler.
static inline void herald_ticker_stop(herald_ticker *ticker) {
    lws_sul_cancel(&ticker->sul);
}

/// SHA-256 of `len` bytes into `out` (32 bytes).
static inline void herald_sha256(const unsigned char *data, size_t len, unsigned char *out) {
    SHA256(data, len, out);
}

/// Constant-time comparison of two 32-byte digests: 1 when equal.
static inline int herald_digest_equal(const unsigned char *a, const unsigned char *b) {
    return CRYPTO_memcmp(a, b, 32) == 0;
}

/// HMAC-SHA256 of `len` bytes under `key` into `out` (32 bytes).
static inline void herald_hmac_sha256(const unsigned char *key, size_t keylen, const unsigned char *data, size_t len, unsigned char *out) {
    unsigned int outlen = 32;
    HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen);
}

/// `len` cryptographically strong random bytes into `out`: 1 on success.
static inline int herald_random_bytes(unsigned char *out, int len) {
    return RAND_bytes(out, len);
}

/// Gives the allocator's free pages back to the system (glibc keeps freed memory in its
/// heaps; after thousands of connections close it would otherwise stay resident).
static inline void herald_release_free_memory(void) {
    malloc_trim(0);
}

#endif
