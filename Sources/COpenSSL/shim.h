// The OpenSSL calls Herald makes: digests for publisher keys, HMAC for subscriber JWTs,
// random bytes for secrets. (TLS goes through libwebsockets, which links OpenSSL itself.)
#ifndef HERALD_COPENSSL_SHIM_H
#define HERALD_COPENSSL_SHIM_H

#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

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

#endif
