#include "http/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <new>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace manygil::http {

namespace {

// The reason of the newest error on this thread's OpenSSL queue ("no start line"), and the queue
// emptied.
std::string openssl_reason() {
    unsigned long e = ERR_peek_last_error();
    const char* reason = e ? ERR_reason_error_string(e) : nullptr;
    std::string out = reason ? reason : (e ? "error " + std::to_string(ERR_GET_REASON(e)) : "unknown error");
    ERR_clear_error();
    return out;
}

// Whether `path` can be read as a file; throws std::system_error naming it (as `what` says) when not.
void check_readable(const std::string& path, const char* what) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::system_error(errno, std::generic_category(), std::string("cannot read the TLS ") + what + " " + path);
    struct stat st {};
    bool dir = ::fstat(::fileno(f), &st) == 0 && S_ISDIR(st.st_mode);
    std::fclose(f);
    if (dir) throw std::system_error(EISDIR, std::generic_category(), std::string("cannot read the TLS ") + what + " " + path);
}

// ALPN (RFC 7301): HTTP/1.1 when offered (else HTTP/1.0); a client offering only protocols this
// server does not speak ("h2") gets the no_application_protocol alert. Not called when the client
// offers no ALPN at all.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
    const unsigned char* http10 = nullptr;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen) break;  // malformed list: OpenSSL checks it before, but stay inside
        std::string_view name(reinterpret_cast<const char*>(in + i + 1), n);
        if (name == "http/1.1") {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(n);
            return SSL_TLSEXT_ERR_OK;
        }
        if (name == "http/1.0") http10 = in + i + 1;
        i += 1 + n;
    }
    if (http10) {
        *out = http10;
        *outlen = 8;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// An encrypted key would make OpenSSL prompt on the terminal: answer "no passphrase" instead.
int no_passphrase(char*, int, int, void*) { return 0; }

}  // namespace

TlsContext::TlsContext(const TlsOptions& options) {
    const std::string& certfile = options.certfile;
    const std::string& keyfile = options.keyfile.empty() ? options.certfile : options.keyfile;
    if (certfile.empty()) throw std::invalid_argument("TLS needs a certificate file (certfile)");
    check_readable(certfile, "certfile");
    if (!options.keyfile.empty()) check_readable(keyfile, "keyfile");

    ERR_clear_error();
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (!ctx_) throw std::runtime_error("cannot create a TLS context: " + openssl_reason());
    try {
        SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF  // OpenSSL 3: an EOF without close_notify reads as a close (HTTP's
        // own framing tells a cut request or body from a whole one)
        SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
        // Partial writes: a write returns after each record, so the connection's buffer advances as
        // it goes. Moving buffer: the connection appends to that buffer between retries.
        SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                   SSL_MODE_RELEASE_BUFFERS);
        // Read-ahead: one recv() takes in what the socket holds (a whole record, often the next
        // ones), instead of a recv() for each record's header and another for its body.
        SSL_CTX_set_read_ahead(ctx_, 1);
        SSL_CTX_set_dh_auto(ctx_, 1);
        SSL_CTX_set_alpn_select_cb(ctx_, select_alpn, nullptr);
        SSL_CTX_set_default_passwd_cb(ctx_, no_passphrase);

        if (SSL_CTX_use_certificate_chain_file(ctx_, certfile.c_str()) != 1) {
            throw std::invalid_argument("certfile " + certfile + ": no PEM certificate could be loaded from it (" +
                                        openssl_reason() + ")");
        }
        if (SSL_CTX_use_PrivateKey_file(ctx_, keyfile.c_str(), SSL_FILETYPE_PEM) != 1) {
            unsigned long e = ERR_peek_last_error();
            bool mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
            std::string reason = openssl_reason();
            if (mismatch) {
                throw std::invalid_argument("keyfile " + keyfile + " does not hold the private key of the certificate in " +
                                            certfile);
            }
            throw std::invalid_argument("keyfile " + keyfile +
                                        ": no PEM private key could be loaded from it (a key protected by a "
                                        "passphrase is not supported) (" + reason + ")");
        }
        if (SSL_CTX_check_private_key(ctx_) != 1) {
            ERR_clear_error();
            throw std::invalid_argument("keyfile " + keyfile + " does not hold the private key of the certificate in " +
                                        certfile);
        }
    } catch (...) {
        SSL_CTX_free(ctx_);
        throw;
    }
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsSession::TlsSession(const TlsContext& context, int fd) {
    ERR_clear_error();
    ssl_ = SSL_new(context.native());
    if (!ssl_ || SSL_set_fd(ssl_, fd) != 1) {
        SSL_free(ssl_);
        ERR_clear_error();
        throw std::bad_alloc();
    }
    SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

TlsSession::Result TlsSession::fail(int ret) {
    int err = SSL_get_error(ssl_, ret);
    switch (err) {
        case SSL_ERROR_WANT_READ: return {Status::WantRead};
        case SSL_ERROR_WANT_WRITE: return {Status::WantWrite};
        case SSL_ERROR_ZERO_RETURN: return {Status::Closed};  // close_notify, or EOF (IGNORE_UNEXPECTED_EOF)
        default: break;
    }
    failed_ = true;  // SSL_shutdown must not follow a fatal error
    if (err == SSL_ERROR_SSL) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            (ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST || ERR_GET_REASON(e) == SSL_R_HTTPS_PROXY_REQUEST)) {
            ERR_clear_error();
            return {Status::PlainHttp};
        }
        error_ = openssl_reason();
        return {Status::Failed};
    }
    // SSL_ERROR_SYSCALL: the socket failed (a reset).
    error_ = errno ? std::generic_category().message(errno) : "the connection ended";
    ERR_clear_error();
    return {Status::Failed};
}

TlsSession::Result TlsSession::handshake() {
    if (established_) return {Status::Ok};
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl_);
    if (ret == 1) {
        established_ = true;
        return {Status::Ok};
    }
    return fail(ret);
}

TlsSession::Result TlsSession::read(char* buf, std::size_t len) {
    ERR_clear_error();
    std::size_t n = 0;
    int ret = SSL_read_ex(ssl_, buf, len, &n);
    if (ret == 1) return {Status::Ok, n};
    return fail(ret);
}

TlsSession::Result TlsSession::write(const char* buf, std::size_t len) {
    if (len == 0) return {Status::Ok, 0};
    ERR_clear_error();
    std::size_t n = 0;
    int ret = SSL_write_ex(ssl_, buf, len, &n);
    if (ret == 1) return {Status::Ok, n};
    return fail(ret);
}

void TlsSession::shutdown() noexcept {
    if (!established_ || failed_) return;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues and tries to send close_notify; its outcome does not matter
    ERR_clear_error();
    failed_ = true;  // once
}

}  // namespace manygil::http
