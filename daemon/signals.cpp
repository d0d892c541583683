#include "daemon/signals.hpp"

#include <csignal>

namespace cow {

Signals::Signals(boost::asio::io_context& io, Handler handler)
    : set_(io, SIGCHLD, SIGTERM, SIGINT), handler_(std::move(handler)) {
    set_.add(SIGHUP);
    set_.add(SIGUSR1);
    wait();
}

void Signals::cancel() {
    boost::system::error_code ec;
    set_.cancel(ec);
}

void Signals::wait() {
    set_.async_wait([this](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        handler_(signo);
        wait();
    });
}

void ignore_sigpipe() {
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, nullptr);
}

}  // namespace cow
