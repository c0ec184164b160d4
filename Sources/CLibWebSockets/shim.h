// Herald's boundary to libwebsockets (and the one libc call the loop needs that Swift's
// Glibc module lacks). Anything Swift cannot import (macros, varargs) is re-exposed here
// with a herald_ prefix. OpenSSL's digests and HMAC are in COpenSSL.
#ifndef HERALD_CLIBWEBSOCKETS_SHIM_H
#define HERALD_CLIBWEBSOCKETS_SHIM_H

#include <libwebsockets.h>
#include <ev.h>
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
/// Every accepted connection is a raw socket bound to protocols[0]: Herald speaks HTTP/1.1
/// and WebSocket itself (lws 4.1's HTTP server replays buffered pipelined input).
static const unsigned long long herald_opt_only_raw = LWS_SERVER_OPTION_ONLY_RAW;

/// libev instead of poll(): lws watches each socket through a libev loop that Herald owns
/// (a "foreign" loop), so a service iteration costs O(ready sockets), not O(open sockets).
static const unsigned long long herald_opt_libev = LWS_SERVER_OPTION_LIBEV;

/// TLS: lws initialises OpenSSL and makes the vhost's SSL_CTX from the configured
/// certificate; a socket adopted with `herald_adopt_tls_socket` does the TLS handshake
/// before its first RAW_RX, and reads and writes go through OpenSSL from then on.
static const unsigned long long herald_opt_tls = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
/// The only ALPN protocol offered: Herald speaks HTTP/1.1 itself, a client must never get h2
/// (a literal: the vhost keeps the pointer).
static inline const char *herald_alpn_http1(void) { return "http/1.1"; }
static const lws_adoption_type herald_adopt_tls_socket = (lws_adoption_type)(LWS_ADOPT_SOCKET | LWS_ADOPT_ALLOW_SSL);
/* accept4 is a GNU extension the headers declare only under _GNU_SOURCE. */
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
/* Accepts one waiting connection as a non-blocking, close-on-exec socket (-1 and errno when none). */
static inline int herald_accept(int listener) { return accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

/* A context that listens on nothing: each loop accepts on a socket of its own. */
static const int herald_port_no_listen_server = CONTEXT_PORT_NO_LISTEN_SERVER;

/// A new libev loop (epoll on Linux), or NULL.
static inline void *herald_ev_loop_new(void) { return ev_loop_new(EVFLAG_AUTO); }
/// One iteration: waits for events (or a wake), handles them, returns.
static inline void herald_ev_run_once(void *loop) { ev_run((struct ev_loop *)loop, EVRUN_ONCE); }
/// Handles what is ready without waiting (lets lws finish closing after the context went).
static inline void herald_ev_run_nowait(void *loop) { ev_run((struct ev_loop *)loop, EVRUN_NOWAIT); }
static inline void herald_ev_loop_destroy(void *loop) { ev_loop_destroy((struct ev_loop *)loop); }

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

/// Gives the allocator's free pages back to the system (glibc keeps freed memory in its
/// heaps; after thousands of connections close it would otherwise stay resident).
static inline void herald_release_free_memory(void) {
    malloc_trim(0);
}

#endif
