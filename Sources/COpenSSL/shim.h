// The OpenSSL calls Herald makes: digests for publisher keys, HMAC for subscriber JWTs,
// random bytes for secrets, the server's TLS policy and certificate (re)loading on the
// SSL_CTX libwebsockets made, and the built-in client's TLS (https://, wss://).
#ifndef HERALD_COPENSSL_SHIM_H
#define HERALD_COPENSSL_SHIM_H

#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/ecdsa.h>
#include <openssl/core_names.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>

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


/// A PEM public key (`-----BEGIN PUBLIC KEY-----`, or a certificate's) for JWT
/// verification: the EVP_PKEY, its kind in `kind` (1 RSA, 2 EC P-256, 0 anything else)
/// and its size in bits; NULL with the reason in `err`.
static inline void *herald_public_key_load(const char *path, int *kind, int *bits, char *err, size_t errlen) {
    ERR_clear_error();
    FILE *file = fopen(path, "r");
    if (!file) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *key = PEM_read_PUBKEY(file, NULL, NULL, NULL);
    if (!key) {
        rewind(file);
        ERR_clear_error();
        X509 *cert = PEM_read_X509(file, NULL, NULL, NULL);
        if (cert) {
            key = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    fclose(file);
    if (!key) {
        snprintf(err, errlen, "%s holds no PEM public key or certificate", path);
        ERR_clear_error();
        return NULL;
    }
    *bits = EVP_PKEY_get_bits(key);
    *kind = 0;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        *kind = 1;
    } else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        char group[64] = {0};
        size_t length = 0;
        if (EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &length) == 1 && strcmp(group, "prime256v1") == 0) *kind = 2;
    }
    return key;
}

static inline void herald_public_key_free(void *key) { EVP_PKEY_free((EVP_PKEY *)key); }

/// Whether `sig` is a valid SHA-256 signature of `data` under `key`: RSASSA-PKCS1-v1_5
/// (RS256) for an RSA key; for an EC key `sig` is JWS's raw r||s (64 bytes, ES256),
/// turned into the DER OpenSSL verifies. 1 valid, 0 not.
static inline int herald_verify_sha256(void *key, const unsigned char *data, size_t len, const unsigned char *sig, size_t siglen) {
    EVP_PKEY *pkey = (EVP_PKEY *)key;
    unsigned char der[80];
    const unsigned char *checked = sig;
    size_t checkedLength = siglen;
    ERR_clear_error();
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
        if (siglen != 64) return 0;
        ECDSA_SIG *ecdsa = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        if (!ecdsa || !r || !s || ECDSA_SIG_set0(ecdsa, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(ecdsa);
            return 0;
        }
        unsigned char *out = der;
        int written = i2d_ECDSA_SIG(ecdsa, &out);
        ECDSA_SIG_free(ecdsa);
        if (written <= 0 || (size_t)written > sizeof der) return 0;
        checked = der;
        checkedLength = (size_t)written;
    }
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    int ok = context && EVP_DigestVerifyInit(context, NULL, EVP_sha256(), NULL, pkey) == 1
        && EVP_DigestVerify(context, checked, checkedLength, data, len) == 1;
    EVP_MD_CTX_free(context);
    ERR_clear_error();
    return ok;
}

/// OpenSSL's oldest queued error as text into `err` (and the queue cleared).
static inline void herald_tls_error(char *err, size_t errlen) {
    unsigned long code = ERR_get_error();
    if (code == 0) {
        snprintf(err, errlen, "unknown TLS error");
    } else {
        ERR_error_string_n(code, err, errlen);
    }
    ERR_clear_error();
}

/// Herald's TLS policy on a server or client context: TLS 1.2 or newer, forward-secret
/// AEAD ciphers only (Mozilla's "intermediate"), no renegotiation, no compression, and
/// buffers released while a connection is idle.
static inline int herald_tls_harden(void *ctx) {
    SSL_CTX *c = (SSL_CTX *)ctx;
    if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION)) return 0;
    if (!SSL_CTX_set_cipher_list(c,
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")) return 0;
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    // An idle connection gives its 16 KB read and write buffers back (taken again on use).
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    return 1;
}

/// Loads a PEM certificate chain and its PEM private key into `ctx`, or, when `ctx` is
/// NULL, into a scratch context only to check them. 1 on success; else 0 and the reason
/// in `err`. (Connections already made keep the certificate they were made with.)
static inline int herald_tls_load_certificate(void *ctx, const char *cert, const char *key, char *err, size_t errlen) {
    SSL_CTX *c = ctx ? (SSL_CTX *)ctx : SSL_CTX_new(TLS_server_method());
    int ok = 0;
    ERR_clear_error();
    if (!c) {
        herald_tls_error(err, errlen);
        return 0;
    }
    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
        char reason[200];
        herald_tls_error(reason, sizeof reason);
        snprintf(err, errlen, "tls.cert %s: %s", cert, reason);
    } else if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
        char reason[200];
        unsigned long code = ERR_peek_error();
        if (ERR_GET_LIB(code) == ERR_LIB_X509 && ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            snprintf(err, errlen, "tls.key %s does not belong to the certificate in tls.cert %s", key, cert);
            if (!ctx) SSL_CTX_free(c);
            return 0;
        }
        herald_tls_error(reason, sizeof reason);
        snprintf(err, errlen, "tls.key %s: %s", key, reason);
    } else if (SSL_CTX_check_private_key(c) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "tls.key %s does not belong to the certificate in tls.cert %s", key, cert);
    } else {
        ok = 1;
    }
    if (!ctx) SSL_CTX_free(c);
    return ok;
}

/// A client context that verifies servers against `cafile` (PEM), or the system's
/// certificate authorities when NULL. NULL on failure, with the reason in `err`.
static inline void *herald_tls_client_context(const char *cafile, char *err, size_t errlen) {
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c || !herald_tls_harden(c)) {
        herald_tls_error(err, errlen);
        if (c) SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    // Non-blocking writers retry with what is left, from wherever their buffer is now.
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // A server that closes without close_notify ends the stream like a TCP close would.
    SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
    int loaded = cafile ? SSL_CTX_load_verify_locations(c, cafile, NULL) : SSL_CTX_set_default_verify_paths(c);
    if (loaded != 1) {
        char reason[200];
        herald_tls_error(reason, sizeof reason);
        snprintf(err, errlen, "cannot load CA certificates%s%s: %s", cafile ? " from " : "", cafile ? cafile : "", reason);
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

static inline void herald_tls_context_free(void *ctx) { SSL_CTX_free((SSL_CTX *)ctx); }

/// A client session on connected socket `fd` that checks the server's certificate is
/// for `host` (a DNS name, also sent as SNI, or an IP literal).
static inline void *herald_tls_client_session(void *ctx, int fd, const char *host, int host_is_ip) {
    SSL *ssl = SSL_new((SSL_CTX *)ctx);
    if (!ssl) return NULL;
    int ok = SSL_set_fd(ssl, fd);
    if (ok && host_is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else if (ok) {
        ok = SSL_set1_host(ssl, host) && SSL_set_tlsext_host_name(ssl, host);
    }
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

static inline void herald_tls_session_free(void *ssl) { SSL_free((SSL *)ssl); }

/// What a non-blocking TLS call needs before it can go on.
enum {
    HERALD_TLS_WANT_READ = -2,
    HERALD_TLS_WANT_WRITE = -3,
    HERALD_TLS_FAILED = -1,
    /// The TCP connection broke under TLS (reset, broken pipe): no TLS error to tell.
    HERALD_TLS_BROKEN = -4,
};

static inline int herald_tls_status(SSL *ssl, int result, char *err, size_t errlen) {
    switch (SSL_get_error(ssl, result)) {
    case SSL_ERROR_WANT_READ: return HERALD_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return HERALD_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            snprintf(err, errlen, "%s", errno ? strerror(errno) : "connection closed");
            return HERALD_TLS_BROKEN;
        }
        /* fall through */
    default: {
        long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            snprintf(err, errlen, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
            ERR_clear_error();
        } else {
            herald_tls_error(err, errlen);
        }
        return HERALD_TLS_FAILED;
    }
    }
}

/// One step of the handshake: 1 done, else a HERALD_TLS_ status.
static inline int herald_tls_handshake(void *ssl, char *err, size_t errlen) {
    ERR_clear_error();
    int result = SSL_do_handshake((SSL *)ssl);
    return result == 1 ? 1 : herald_tls_status((SSL *)ssl, result, err, errlen);
}

/// Bytes read (> 0), 0 at the peer's close, or a HERALD_TLS_ status.
static inline long herald_tls_read(void *ssl, void *buffer, int count, char *err, size_t errlen) {
    ERR_clear_error();
    int result = SSL_read((SSL *)ssl, buffer, count);
    return result > 0 ? result : herald_tls_status((SSL *)ssl, result, err, errlen);
}

/// Bytes written (> 0) or a HERALD_TLS_ status.
static inline long herald_tls_write(void *ssl, const void *buffer, int count, char *err, size_t errlen) {
    ERR_clear_error();
    int result = SSL_write((SSL *)ssl, buffer, count);
    return result > 0 ? result : herald_tls_status((SSL *)ssl, result, err, errlen);
}

/// Bytes decrypted and waiting inside the session.
static inline int herald_tls_pending(void *ssl) { return SSL_pending((SSL *)ssl); }

#endif
