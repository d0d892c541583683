#include "core/signal_names.hpp"

#include <csignal>
#include <cstdio>
#include <string>

namespace cow {
namespace {

struct Entry {
    const char* name;
    int signo;
};

constexpr Entry kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
    {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
        if (x != y) return false;
    }
    return true;
}

}  // namespace

std::optional<int> parse_signal(std::string_view text) {
    if (text.empty() || text.size() > 16) return std::nullopt;
    if (text[0] >= '0' && text[0] <= '9') {
        int n = 0;
        for (char c : text) {
            if (c < '0' || c > '9') return std::nullopt;
            n = n * 10 + (c - '0');
            if (n > 64) return std::nullopt;
        }
        if (n < 1 || n > SIGRTMAX) return std::nullopt;
        return n;
    }
    if (text.size() > 3 && iequals(text.substr(0, 3), "SIG")) text.remove_prefix(3);
    for (const auto& e : kSignals)
        if (iequals(text, e.name)) return e.signo;
    return std::nullopt;
}

std::string_view signal_name(int signo) {
    for (const auto& e : kSignals)
        if (e.signo == signo) return e.name;
    static thread_local char buf[16];
    std::snprintf(buf, sizeof buf, "SIG%d", signo);
    return buf;
}

}  // namespace cow
