// RSA signing on the system's OpenSSL libcrypto, which signs RSA-2048 about twice as fast as the
// BoringSSL inside swift-crypto on the CPUs Herald runs on (issue #16: DKIM signing was 65 % of the
// delivery worker's CPU). BoringSSL's symbols are prefixed in swift-crypto and swift-nio-ssl, so both
// libraries live in one process without clashing.
#include "CHeraldCrypto.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

struct herald_rsa_key {
    EVP_PKEY *pkey;
};

herald_rsa_key *herald_rsa_key_from_der(const uint8_t *der, size_t length) {
    const unsigned char *cursor = der;
    EVP_PKEY *pkey = d2i_AutoPrivateKey(NULL, &cursor, (long)length);
    if (pkey == NULL) return NULL;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    herald_rsa_key *key = OPENSSL_malloc(sizeof(herald_rsa_key));
    if (key == NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    key->pkey = pkey;
    return key;
}

void herald_rsa_key_free(herald_rsa_key *key) {
    if (key == NULL) return;
    EVP_PKEY_free(key->pkey);
    OPENSSL_free(key);
}

size_t herald_rsa_key_size(const herald_rsa_key *key) {
    return (size_t)EVP_PKEY_get_size(key->pkey);
}

int herald_rsa_sign_sha256_digest(const herald_rsa_key *key, const uint8_t *digest, uint8_t *signature, size_t *signature_length) {
    EVP_PKEY_CTX *context = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (context == NULL) return 0;
    int ok = EVP_PKEY_sign_init(context) == 1
        && EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PADDING) == 1
        && EVP_PKEY_CTX_set_signature_md(context, EVP_sha256()) == 1
        && EVP_PKEY_sign(context, signature, signature_length, digest, 32) == 1;
    EVP_PKEY_CTX_free(context);
    return ok ? 1 : 0;
}
