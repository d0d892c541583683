#include "daemon/os/signals.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>

#include <sys/signalfd.h>
#include <unistd.h>

namespace cow {

namespace {

// Most urgent first: a death is handled before a reload that the same read brought.
constexpr int kSignals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

sigset_t handled_set() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : kSignals)
        sigaddset(&set, s);
    return set;
}

}  // namespace

std::variant<std::unique_ptr<Signals>, std::string> Signals::open(boost::asio::io_context& io,
                                                                  Handler handler) {
    const sigset_t set = handled_set();
    // Blocked signals are queued even for PID 1, whose SIG_DFL signals the kernel would
    // otherwise drop; workers get an empty mask back in spawn_child.
    if (int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr); rc != 0)
        return std::string("signals: pthread_sigmask: ") + std::strerror(rc);
    int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return std::string("signals: signalfd: ") + std::strerror(errno);
    return std::unique_ptr<Signals>(new Signals(io, fd, std::move(handler)));
}

Signals::Signals(boost::asio::io_context& io, int fd, Handler handler)
    : fd_(io, fd), handler_(std::move(handler)) {
    wait();
}

Signals::~Signals() {
    cancel();
}

void Signals::cancel() {
    cancelled_ = true;
    boost::system::error_code ec;
    fd_.cancel(ec);
}

void Signals::wait() {
    fd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                   [this](const boost::system::error_code& ec) {
                       if (ec || cancelled_) return;
                       drain();
                       if (!cancelled_) wait();
                   });
}

void Signals::drain() {
    // Read everything pending, then hand each signal number over once.
    bool seen[NSIG] = {};
    signalfd_siginfo info[16];
    for (;;) {
        ssize_t n = ::read(fd_.native_handle(), info, sizeof info);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof info[0]); ++i)
            if (info[i].ssi_signo < NSIG) seen[info[i].ssi_signo] = true;
    }
    for (int s : kSignals)
        if (seen[s] && !cancelled_) handler_(s);
}

void ignore_sigpipe() {
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, nullptr);
}

}  // namespace cow
