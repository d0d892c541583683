#include "daemon/probe/probe_target.hpp"

#include <charconv>

namespace cow::probe {

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
}

std::optional<std::uint16_t> parse_port(std::string_view t) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size() || v == 0 || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

std::variant<Endpoint, std::string> split_host_port(std::string_view hp) {
    Endpoint e;
    std::string_view host, port;
    if (hp.starts_with('[')) {
        auto close = hp.find(']');
        if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':')
            return std::string("expected [IPV6]:PORT");
        host = hp.substr(1, close - 1);
        port = hp.substr(close + 2);
    } else {
        auto colon = hp.rfind(':');
        if (colon == std::string_view::npos) return std::string("missing :PORT");
        host = hp.substr(0, colon);
        port = hp.substr(colon + 1);
    }
    auto p = parse_port(port);
    if (!p) return "invalid port \"" + std::string(port) + "\"";
    e.host = host.empty() || host == "localhost" ? "127.0.0.1" : std::string(host);
    e.port = *p;
    return e;
}

}  // namespace

std::string expand(const std::string& text, const config::ProbeConfig& probe,
                   const config::PoolConfig& pool, int index, pid_t pid, std::uint64_t generation) {
    std::string out = text;
    replace_all(out, "{index}", std::to_string(index));
    replace_all(out, "{pid}", std::to_string(pid));
    if (out.find("{port}") != std::string::npos) {
        int port = 0;
        if (probe.port) {
            port = config::probe_port(*probe.port, index, generation);
        } else {
            for (const auto& s : pool.sockets)
                if (s.kind == config::SocketConfig::Kind::tcp) {
                    port = s.port;
                    break;
                }
        }
        replace_all(out, "{port}", std::to_string(port));
    }
    return out;
}

std::variant<Endpoint, std::string> parse_http(const std::string& url) {
    constexpr std::string_view kScheme = "http://";
    if (!url.starts_with(kScheme)) return std::string("only http:// URLs are supported");
    std::string_view rest = std::string_view(url).substr(kScheme.size());
    auto slash = rest.find('/');
    std::string_view hp = rest.substr(0, slash);
    auto e = split_host_port(hp);
    if (auto* err = std::get_if<std::string>(&e)) return *err;
    auto ep = std::get<Endpoint>(e);
    ep.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    ep.host_header = std::string(hp);
    return ep;
}

std::variant<Endpoint, std::string> parse_tcp(const std::string& hostport) {
    return split_host_port(hostport);
}

}  // namespace cow::probe
