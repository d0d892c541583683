#include "daemon/upgrade.hpp"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/os/handover.hpp"

extern char** environ;

namespace cow::upgrade {

namespace json = boost::json;

boost::json::object header() {
    return json::object{
        {"format", kFormat}, {"major", kMajor}, {"minor", kMinor}, {"version", COWHERD_VERSION}};
}

std::variant<json::object, std::string> parse_json(std::string_view text) {
    boost::system::error_code ec;
    json::parse_options opt;
    opt.allow_invalid_utf8 = true;  // worker output travels in it, byte for byte
    opt.max_depth = 64;
    auto v = json::parse(text, ec, {}, opt);
    if (ec) return "the state is not JSON: " + ec.message();
    if (!v.is_object()) return std::string("the state is not a JSON object");
    return std::move(v.as_object());
}

const json::object& section(const json::object& o, std::string_view key) {
    static const json::object empty;
    const auto* v = o.if_contains(key);
    return v && v->is_object() ? v->as_object() : empty;
}

std::string check_version(const json::object& o) {
    const auto* fmt = o.if_contains("format");
    if (!fmt || !fmt->is_string() || fmt->as_string() != kFormat) return "not a cowherd state";
    const auto* major = o.if_contains("major");
    if (!major || !major->is_int64()) return "the state has no version";
    if (major->as_int64() != kMajor) {
        const auto* by = o.if_contains("version");
        return "the state is of format version " + std::to_string(major->as_int64()) +
               (by && by->is_string() ? " (written by cowherd " + std::string(by->as_string()) + ")"
                                      : std::string()) +
               "; this cowherd " COWHERD_VERSION " reads version " + std::to_string(kMajor);
    }
    return {};
}

std::variant<json::object, std::string> read_json(int fd) {
    auto text = handover::read_all(fd);
    if (text.index() == 1) return std::get<1>(text);
    return parse_json(std::get<0>(text));
}

namespace {

// What the signal path executes: built before it can be needed.
struct Armed {
    int exe_fd = -1;
    std::vector<int> fds;  // what the state names, sorted: everything else is sealed
    std::vector<std::string> args;
    std::vector<char*> argv;
    std::string crash_env, late_env;
    std::vector<char*> crash_envp, late_envp;
};
Armed* g_armed = nullptr;
constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

std::vector<char*> env_with(std::string& entry) {
    std::vector<char*> envp;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, kFailedEnv, std::strlen(kFailedEnv)) != 0) envp.push_back(*e);
    envp.push_back(entry.data());
    envp.push_back(nullptr);
    return envp;
}

extern "C" void on_fatal(int sig) {
    Armed* a = g_armed;
    if (!a) return;
    // The mask crosses execve: the daemon's own blocked set (signals.cpp) is what the previous
    // image expects, and this signal is not in it (SA_NODEFER).
    char** envp = sig == SIGALRM ? a->late_envp.data() : a->crash_envp.data();
    handover::seal_others(a->fds);
    ::syscall(SYS_execveat, a->exe_fd, "", a->argv.data(), envp, AT_EMPTY_PATH);
    // Nothing left to go back to: die of the signal, as without the handler.
    std::signal(sig, SIG_DFL);
    ::raise(sig);
}

}  // namespace

void arm_rollback(const json::object& state, int state_fd, unsigned deadline_seconds) {
    const auto* d = state.if_contains("daemon");
    if (!d || !d->is_object()) return;
    const auto& daemon = d->as_object();
    const auto* fd = daemon.if_contains("exe_fd");
    const auto* argv = daemon.if_contains("argv");
    if (!fd || !fd->is_int64() || fd->as_int64() < 0 || !argv || !argv->is_array()) return;
    auto* a = new Armed;
    a->exe_fd = static_cast<int>(fd->as_int64());
    if (const auto* fds = daemon.if_contains("fds"); fds && fds->is_array())
        for (const auto& v : fds->as_array())
            if (v.is_int64()) a->fds.push_back(static_cast<int>(v.as_int64()));
    std::sort(a->fds.begin(), a->fds.end());
    for (const auto& v : argv->as_array())
        if (v.is_string()) a->args.emplace_back(v.as_string());
    a->args.emplace_back(kStateOption);
    a->args.push_back(std::to_string(state_fd));
    a->args.emplace_back(kRollbackOption);
    for (auto& s : a->args)
        a->argv.push_back(s.data());
    a->argv.push_back(nullptr);
    a->crash_env = std::string(kFailedEnv) + "=cowherd " COWHERD_VERSION
                                             " died of a signal while taking the state up";
    a->late_env = std::string(kFailedEnv) + "=cowherd " COWHERD_VERSION " was not ready within " +
                  std::to_string(deadline_seconds) + "s";
    a->crash_envp = env_with(a->crash_env);
    a->late_envp = env_with(a->late_env);
    g_armed = a;
    struct sigaction sa {};
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (int sig : kCrashSignals)
        ::sigaction(sig, &sa, nullptr);
    ::sigaction(SIGALRM, &sa, nullptr);
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int sig : kCrashSignals)
        sigaddset(&unblock, sig);
    sigaddset(&unblock, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
    ::alarm(deadline_seconds);
}

void disarm_rollback() {
    ::alarm(0);
    Armed* a = g_armed;
    g_armed = nullptr;
    for (int sig : kCrashSignals)
        std::signal(sig, SIG_DFL);
    std::signal(SIGALRM, SIG_DFL);
    if (a) {
        ::close(a->exe_fd);
        delete a;
    }
}

void rollback(const std::string& why) {
    Armed* a = g_armed;
    if (!a) {
        spdlog::critical("cannot take over from the previous image: {}; nothing to go back to",
                         why);
        return;
    }
    ::alarm(0);
    spdlog::critical("cannot take over from the previous image: {}; executing it again", why);
    spdlog::default_logger()->flush();
    std::string entry = std::string(kFailedEnv) + "=" + why;
    handover::seal_others(a->fds);
    auto envp = env_with(entry);
    ::syscall(SYS_execveat, a->exe_fd, "", a->argv.data(), envp.data(), AT_EMPTY_PATH);
    spdlog::critical("cannot execute the previous image again: {}", std::strerror(errno));
}

}  // namespace cow::upgrade
