// One worker thread for slow reads of /proc (trees, smaps), so the loop never stalls on them
// (design §3.7). Jobs get plain data, never supervisor state; their results are posted back
// to the loop, where the continuation runs.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace cow {

class Background {
  public:
    explicit Background(boost::asio::io_context& io);
    ~Background();  // finishes the running job, drops the queued ones, joins
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;

    // Runs job() on the thread, then done(result) on the loop.
    template <class Job, class Done>
    void run(Job job, Done done) {
        auto io = &io_;
        enqueue([io, job = std::move(job), done = std::move(done)]() mutable {
            auto result = std::make_shared<decltype(job())>(job());
            boost::asio::post(
                *io, [done = std::move(done), result]() mutable { done(std::move(*result)); });
        });
    }

    std::size_t queued() const;
    boost::asio::io_context& io() { return io_; }

  private:
    void enqueue(std::function<void()> f);
    void loop();

    boost::asio::io_context& io_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace cow
