#include "http/access_log.hpp"

#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <stdexcept>

namespace manygil::http {

namespace {

constexpr std::string_view kAtoms = "hlutrmUqHsBbfaTMDLp";  // the one-letter atoms; i, o, e take {name}

std::string_view header(const std::vector<Header>& headers, std::string_view name) {
    for (const Header& h : headers) {
        if (iequals(h.name, name)) return h.value;
    }
    return {};
}

std::string or_dash(std::string_view v) { return v.empty() ? std::string("-") : std::string(v); }

// [10/Oct/2000:13:55:36 +0000], in UTC.
std::string bracketed_time() {
    std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char out[40];
    std::size_t n = std::strftime(out, sizeof out, "[%d/%b/%Y:%H:%M:%S +0000]", &utc);
    return std::string(out, n);
}

}  // namespace

AccessLogFormat::AccessLogFormat(std::string_view format) {
    std::string literal;
    auto flush = [&] {
        if (!literal.empty()) pieces_.push_back({0, std::move(literal)});
        literal.clear();
    };
    for (std::size_t i = 0; i < format.size(); ++i) {
        if (format.compare(i, 2, "%%") == 0) {
            literal += '%';
            ++i;
            continue;
        }
        if (format.compare(i, 2, "%(") != 0) {
            literal += format[i];
            continue;
        }
        auto close = format.find(")s", i + 2);
        if (close == std::string_view::npos) {
            throw std::invalid_argument("access log format: '%(' at " + std::to_string(i) + " is not closed by ')s'");
        }
        std::string_view atom = format.substr(i + 2, close - i - 2);
        flush();
        if (atom.size() == 1 && kAtoms.find(atom[0]) != std::string_view::npos) {
            pieces_.push_back({atom[0], {}});
            if (atom[0] == 'f' || atom[0] == 'a') needs_request_headers_ = true;
        } else if (atom.size() > 3 && atom.front() == '{' && atom[atom.size() - 2] == '}' &&
                   std::string_view("ioe").find(atom.back()) != std::string_view::npos) {
            pieces_.push_back({atom.back(), std::string(atom.substr(1, atom.size() - 3))});
            if (atom.back() == 'i') needs_request_headers_ = true;
        } else {
            throw std::invalid_argument("access log format: unknown atom '%(" + std::string(atom) +
                                        ")s' (gunicorn's atoms: h l u t r m U q H s B b f a T M D L p, "
                                        "{header}i, {header}o, {variable}e)");
        }
        i = close + 1;
    }
    flush();
}

std::string AccessLogFormat::render(const AccessRecord& r, int status, std::optional<std::uint64_t> bytes,
                                    const std::vector<Header>& response_headers) const {
    auto elapsed = std::chrono::steady_clock::now() - r.started;
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    std::string line;
    for (const Piece& p : pieces_) {
        switch (p.atom) {
            case 0: line += p.text; break;
            case 'h': line += or_dash(r.remote); break;
            case 'l': case 'u': line += '-'; break;
            case 't': line += bracketed_time(); break;
            case 'r': line += r.method + " " + r.target + " " + r.protocol; break;
            case 'm': line += r.method; break;
            case 'U': line += r.target.substr(0, r.target.find('?')); break;
            case 'q': {
                auto q = r.target.find('?');
                if (q != std::string::npos) line += r.target.substr(q + 1);
                break;
            }
            case 'H': line += r.protocol; break;
            case 's': line += std::to_string(status); break;
            case 'B': line += bytes ? std::to_string(*bytes) : std::string("-"); break;
            case 'b': line += bytes && *bytes > 0 ? std::to_string(*bytes) : std::string("-"); break;
            case 'f': line += or_dash(header(r.request_headers, "referer")); break;
            case 'a': line += or_dash(header(r.request_headers, "user-agent")); break;
            case 'T': line += std::to_string(micros / 1'000'000); break;
            case 'M': line += std::to_string(micros / 1'000); break;
            case 'D': line += std::to_string(micros); break;
            case 'L': {
                char out[32];
                int n = std::snprintf(out, sizeof out, "%.6f", static_cast<double>(micros) / 1e6);
                line.append(out, static_cast<std::size_t>(n));
                break;
            }
            case 'p': line += "<" + std::to_string(::getpid()) + ">"; break;
            case 'i': line += or_dash(header(r.request_headers, p.text)); break;
            case 'o': line += or_dash(header(response_headers, p.text)); break;
            case 'e': {
                const char* v = std::getenv(p.text.c_str());
                line += v ? v : "-";
                break;
            }
            default: break;
        }
    }
    return line;
}

}  // namespace manygil::http
