#ifndef C_HERALD_CRYPTO_H
#define C_HERALD_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/// An RSA private key held by the system's OpenSSL libcrypto (opaque).
typedef struct herald_rsa_key herald_rsa_key;

/// Loads an RSA private key from DER (PKCS #1 RSAPrivateKey or PKCS #8); NULL if it is not one.
herald_rsa_key *herald_rsa_key_from_der(const uint8_t *der, size_t length);

/// Frees a key.
void herald_rsa_key_free(herald_rsa_key *key);

/// The key's size in bytes (the length of its signatures).
size_t herald_rsa_key_size(const herald_rsa_key *key);

/// RSASSA-PKCS1-v1_5 with SHA-256 over a 32-byte SHA-256 digest; writes the signature to `signature`
/// (room for herald_rsa_key_size bytes) and its length to `signature_length`. Returns 1 on success,
/// 0 on failure. Safe to call from several threads at once with the same key.
int herald_rsa_sign_sha256_digest(const herald_rsa_key *key, const uint8_t *digest, uint8_t *signature, size_t *signature_length);

#endif
