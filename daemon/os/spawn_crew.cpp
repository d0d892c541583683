#include "daemon/os/spawn_crew.hpp"

#include <algorithm>
#include <cerrno>
#include <exception>

#include <pthread.h>
#include <signal.h>

namespace cow {

SpawnCrew::SpawnCrew() {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int helpers = std::min(cores, spawn::kStackSlots) - 1;
    // Signals belong to the loop thread's signalfd; a helper must never take one.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int slot = 1; slot <= helpers; ++slot)
        threads_.emplace_back([this, slot] {
            pthread_setname_np(pthread_self(), "cowherd-spawn");
            helper(slot);
        });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

SpawnCrew::~SpawnCrew() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_)
        t.join();
}

void SpawnCrew::work(int slot) {
    for (;;) {
        const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
        if (i >= plans_->size()) return;
        try {
            (*results_)[i] = spawn::spawn(*(*plans_)[i], slot);
        } catch (const std::exception&) {  // bad_alloc writing a message: a failed spawn
            (*results_)[i].ok = false;
            (*results_)[i].stage = spawn::Stage::clone;
            (*results_)[i].err = ENOMEM;
        }
    }
}

void SpawnCrew::helper(int slot) {
    std::uint64_t seen = 0;
    std::unique_lock lock(mu_);
    for (;;) {
        wake_.wait(lock, [&] { return stop_ || round_ != seen; });
        if (stop_) return;
        seen = round_;
        lock.unlock();
        work(slot);
        lock.lock();
        if (--busy_ == 0) done_.notify_one();
    }
}

std::vector<spawn::Result> SpawnCrew::run(const std::vector<spawn::Plan*>& plans) {
    std::vector<spawn::Result> results(plans.size());
    if (plans.size() < 2 || threads_.empty()) {
        for (std::size_t i = 0; i < plans.size(); ++i)
            results[i] = spawn::spawn(*plans[i], 0);
        return results;
    }
    for (auto* p : plans)
        spawn::make_ready(*p);
    {
        std::lock_guard lock(mu_);
        plans_ = &plans;
        results_ = &results;
        next_.store(0, std::memory_order_relaxed);
        busy_ = static_cast<int>(threads_.size());
        ++round_;
    }
    wake_.notify_all();
    work(0);
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return busy_ == 0; });
    plans_ = nullptr;
    results_ = nullptr;
    return results;
}

}  // namespace cow
