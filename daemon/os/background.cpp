#include "daemon/os/background.hpp"

#include <pthread.h>
#include <signal.h>

namespace cow {

Background::Background(boost::asio::io_context& io) : io_(io) {
    // The thread must never take a signal meant for the loop: block all while creating it, so
    // it inherits a full mask.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this] { loop(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Background::~Background() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
        jobs_.clear();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::size_t Background::queued() const {
    std::lock_guard lock(mu_);
    return jobs_.size();
}

void Background::enqueue(std::function<void()> f) {
    {
        std::lock_guard lock(mu_);
        jobs_.push_back(std::move(f));
    }
    cv_.notify_one();
}

void Background::loop() {
    pthread_setname_np(pthread_self(), "cowherd-reader");
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
            if (stop_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job();
    }
}

}  // namespace cow
