// Where a probe goes for one worker: the config's target with {index} and {port} filled in,
// and an http:// URL or HOST:PORT taken apart. Pure, so that it is tested without a network.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <sys/types.h>

#include "config/config.hpp"

namespace cow::probe {

struct Endpoint {
    std::string host;  // numeric; "localhost" is read as 127.0.0.1
    std::uint16_t port = 0;
    std::string path = "/";   // http only
    std::string host_header;  // http only: as written in the URL
};

// {index} is the worker's index, {pid} its main process's pid; {port} is config::probe_port() when
// the probe has `port`, else the port of the pool's first tcp socket.
std::string expand(const std::string& text, const config::ProbeConfig& probe,
                   const config::PoolConfig& pool, int index, pid_t pid, std::uint64_t generation);

// "http://127.0.0.1:8000/healthz" or "127.0.0.1:8000" (already expanded); the error says why not.
std::variant<Endpoint, std::string> parse_http(const std::string& url);
std::variant<Endpoint, std::string> parse_tcp(const std::string& hostport);

}  // namespace cow::probe
