#include "daemon/os/helpers.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "daemon/spawn/spawn.hpp"

extern char** environ;

namespace cow {

Helpers::Helpers(boost::asio::io_context& io, int devnull, std::size_t max_running,
                 std::size_t max_queued)
    : io_(io), devnull_(devnull), max_running_(max_running), max_queued_(max_queued) {}

Helpers::~Helpers() {
    // The daemon is going away: what still runs is cut short, not left behind.
    for (auto& [pid, r] : running_) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
    }
}

void Helpers::run(std::vector<std::string> argv, std::string input,
                  std::chrono::milliseconds timeout, Done done) {
    Job job{std::move(argv), std::move(input), timeout, std::move(done)};
    if (running_.size() < max_running_) {
        start(std::move(job));
        return;
    }
    if (queue_.size() >= max_queued_) {
        ++refused_;
        HelperResult r;
        r.error = "too many commands waiting (" + std::to_string(max_queued_) + ")";
        job.done(r);
        return;
    }
    queue_.push_back(std::move(job));
}

void Helpers::next() {
    while (!queue_.empty() && running_.size() < max_running_) {
        Job j = std::move(queue_.front());
        queue_.pop_front();
        start(std::move(j));
    }
}

void Helpers::start(Job job) {
    HelperResult fail;
    if (job.argv.empty()) {
        fail.error = "empty command";
        job.done(fail);
        return;
    }
    int in[2];
    if (::pipe2(in, O_CLOEXEC) < 0) {
        fail.error = std::string("pipe: ") + std::strerror(errno);
        job.done(fail);
        return;
    }
    // The input is small (an event, a few hundred bytes): it fits the pipe, so it is written
    // whole before the command starts, and the loop never waits on a command that does not read.
    if (!job.input.empty()) {
        ::fcntl(in[1], F_SETFL, O_NONBLOCK);
        ssize_t n = ::write(in[1], job.input.data(), job.input.size());
        (void)n;  // what does not fit is cut; the command sees the end of its input
    }
    ::close(in[1]);

    spawn::Plan plan;
    const char* path = std::getenv("PATH");
    plan.exec_paths = spawn::exec_candidates(job.argv[0], path ? path : "/usr/bin:/bin");
    plan.display_path = job.argv[0];
    for (auto& a : job.argv)
        plan.argv.push_back(a.data());
    plan.argv.push_back(nullptr);
    for (char** e = environ; *e; ++e)
        plan.envp.push_back(*e);
    plan.envp.push_back(nullptr);
    plan.stdin_fd = in[0];
    plan.stdout_fd = devnull_;
    plan.stderr_fd = devnull_;
    spawn::Result res = spawn::spawn(plan, 0);
    ::close(in[0]);
    if (res.pid > 0 && on_started) on_started(res.pid);
    if (!res.ok) {
        // A child that failed after clone must still be reaped: its exit comes to reaped(),
        // which reports the failure then.
        fail.error = res.message;
        if (res.pid <= 0) {
            job.done(fail);
            return;
        }
        Running r;
        r.done = [msg = res.message, done = std::move(job.done)](const HelperResult&) {
            HelperResult f;
            f.error = msg;
            done(f);
        };
        running_.emplace(res.pid, std::move(r));
        return;
    }
    Running r;
    r.done = std::move(job.done);
    r.deadline = std::make_unique<boost::asio::steady_timer>(io_, job.timeout);
    const pid_t pid = res.pid;
    r.deadline->async_wait([this, pid](const boost::system::error_code& ec) {
        if (ec) return;
        auto it = running_.find(pid);
        if (it == running_.end()) return;
        it->second.timed_out = true;
        // Unreaped, so the pid (and its group, from the child's setsid) is still its own.
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
    });
    running_.emplace(pid, std::move(r));
}

bool Helpers::reaped(pid_t pid, int status) {
    auto it = running_.find(pid);
    if (it == running_.end()) return false;
    Running r = std::move(it->second);
    running_.erase(it);
    if (r.deadline) r.deadline->cancel();
    if (on_reaped) on_reaped(pid);
    HelperResult res;
    res.ran = true;
    res.timed_out = r.timed_out;
    res.exit = decode_wait_status(status);
    r.done(res);
    next();
    return true;
}

}  // namespace cow
