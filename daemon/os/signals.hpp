// The daemon's signals: SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 become loop events.
// They are blocked and read from a signalfd, so the kernel coalesces a flood of them into one
// pending bit each: a storm of 100,000 HUPs costs a handful of reads, never one handler run
// per signal, and cannot crowd out a SIGCHLD. Nothing runs in signal context.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

namespace cow {

class Signals {
  public:
    using Handler = std::function<void(int signo)>;
    // Blocks the signals in the calling thread; call it on the loop thread before any other
    // thread starts, so that every thread inherits the mask. Or a sentence saying why not.
    static std::variant<std::unique_ptr<Signals>, std::string> open(boost::asio::io_context& io,
                                                                    Handler handler);
    ~Signals();
    void cancel();

  private:
    Signals(boost::asio::io_context& io, int fd, Handler handler);
    void wait();
    void drain();
    boost::asio::posix::stream_descriptor fd_;
    Handler handler_;
    bool cancelled_ = false;
};

// Dispositions the daemon needs before anything else: SIGPIPE ignored (a vanished control
// client must not kill us). Workers get defaults back in spawn_child.
void ignore_sigpipe();

}  // namespace cow
