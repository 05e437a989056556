// TLS for the HTTP front end (ServerOptions::tls), over OpenSSL (Debian's libssl 3): a server
// context loaded once when the Server starts, and a non-blocking session per connection that the
// I/O thread drives from its epoll loop (io_thread.cpp, connection.cpp, flow.cpp). OpenSSL's headers stay in tls.cpp.
//
// Threads: a TlsContext is built on the thread that starts the Server and is then only read: every
// I/O thread creates its sessions from it at once (OpenSSL locks what it changes inside, the
// session cache). A TlsSession belongs to its connection and is used only by that connection's I/O
// thread. Each call clears the calling thread's OpenSSL error queue first, so an error left by
// another connection (or by Python's ssl module on the same thread) is never misread as its own.
//
// Policy: TLS 1.2 or newer; ALPN selects "http/1.1" (or "http/1.0") when the client offers either,
// refuses a client that offers only others ("h2": the no_application_protocol alert, RFC 7301), and
// goes on without ALPN when the client offers none; no renegotiation; OpenSSL's default ciphers and
// security level; an unencrypted private key (a key needing a passphrase is refused, never
// prompted for).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "manygil/http.hpp"

struct ssl_st;
struct ssl_ctx_st;

namespace manygil::http {

class TlsContext {
public:
    // Loads the certificate chain (PEM: the certificate, then its intermediates) and the private key
    // (PEM, unencrypted; from the certificate file when keyfile is empty) and checks that they match.
    // Throws std::system_error naming the file when one cannot be opened, std::invalid_argument
    // naming it when it holds no usable certificate or key, or when the key is not the certificate's.
    explicit TlsContext(const TlsOptions& options);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    ssl_ctx_st* native() const noexcept { return ctx_; }

private:
    ssl_ctx_st* ctx_ = nullptr;
};

// One connection's TLS state, on a non-blocking socket it does not own (the connection closes it).
// handshake(), read() and write() never block: WantRead / WantWrite say which readiness of the
// socket the same call waits for (with the epoll edges the connection already gets for both).
class TlsSession {
public:
    enum class Status {
        Ok,         // done (handshake) or `bytes` moved (read, write)
        WantRead,   // call again once the socket is readable
        WantWrite,  // call again once the socket is writable
        Closed,     // the peer closed (close_notify or EOF)
        Failed,     // a protocol error or a socket error: close the connection, do not shut down
        PlainHttp,  // handshake: the client spoke plain HTTP (its bytes were consumed)
    };
    struct Result {
        Status status;
        std::size_t bytes = 0;
    };

    // Throws std::bad_alloc if OpenSSL cannot make the session.
    TlsSession(const TlsContext& context, int fd);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    bool established() const noexcept { return established_; }
    Result handshake();
    // Decrypted bytes into buf (at most one TLS record's worth per call).
    Result read(char* buf, std::size_t len);
    // Encrypts and sends from buf. After WantWrite/WantRead, call again with the same bytes at the
    // start of buf (the buffer may have moved and grown meanwhile, not shrunk or changed).
    Result write(const char* buf, std::size_t len);
    // Best effort: sends close_notify if the session is established and healthy. Never blocks.
    void shutdown() noexcept;

    // What the last Failed was, for a log line ("wrong version number").
    const std::string& error() const noexcept { return error_; }

private:
    Result fail(int ret);

    ssl_st* ssl_ = nullptr;
    bool established_ = false, failed_ = false;
    std::string error_;
};

}  // namespace manygil::http
