// The daemon's only signal_set: turns SIGCHLD, SIGTERM, SIGINT, SIGHUP and SIGUSR1 into
// loop events. Asio's handler writes to a self-pipe, so nothing runs in signal context.
#pragma once

#include <functional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

namespace cow {

class Signals {
  public:
    using Handler = std::function<void(int signo)>;
    Signals(boost::asio::io_context& io, Handler handler);
    void cancel();

  private:
    void wait();
    boost::asio::signal_set set_;
    Handler handler_;
};

// Dispositions the daemon needs before anything else: SIGPIPE ignored (a vanished control
// client must not kill us). Workers get defaults back in spawn_child.
void ignore_sigpipe();

}  // namespace cow
