// Listening sockets the daemon owns and hands to workers as fds 3, 4, ... (systemd's
// LISTEN_FDS convention). Bound once, before any worker starts; kept open across worker
// restarts, scaling and reloads; closed only when no pool uses them any more.
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace cow {

class ListenSocket {
  public:
    ~ListenSocket();
    ListenSocket(const ListenSocket&) = delete;
    ListenSocket& operator=(const ListenSocket&) = delete;

    // Binds and listens; the error names the socket and the address:
    // "socket http (tcp://127.0.0.1:8000): bind: Address already in use".
    static std::variant<std::shared_ptr<ListenSocket>, std::string> open(
        const config::SocketConfig& cfg);

    // A socket bound by a previous image of this daemon and kept across execve.
    static std::shared_ptr<ListenSocket> adopt(config::SocketConfig cfg, int fd) {
        return std::shared_ptr<ListenSocket>(new ListenSocket(std::move(cfg), fd));
    }
    int fd() const { return fd_; }
    const config::SocketConfig& config() const { return cfg_; }
    // Same address and options: a reload keeps this socket instead of binding anew.
    bool same_as(const config::SocketConfig& other) const;

  private:
    ListenSocket(config::SocketConfig cfg, int fd) : cfg_(std::move(cfg)), fd_(fd) {}
    config::SocketConfig cfg_;
    int fd_;
};

using ListenSockets = std::vector<std::shared_ptr<ListenSocket>>;

// Binds every socket of a pool, reusing any in `keep` with the same address. On error,
// nothing new stays bound.
std::variant<ListenSockets, std::string> open_pool_sockets(const config::PoolConfig& pool,
                                                           const ListenSockets& keep = {});

}  // namespace cow
