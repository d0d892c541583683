#include "core/wait_status.hpp"

#include <sys/wait.h>

#include "core/signal_names.hpp"

namespace cow {

ExitInfo decode_wait_status(int status) {
    ExitInfo info;
    if (WIFEXITED(status)) {
        info.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        info.signal = WTERMSIG(status);
        info.core_dumped = WCOREDUMP(status);
    }
    return info;
}

std::string describe(const ExitInfo& info) {
    if (info.code) return "exited with status " + std::to_string(*info.code);
    if (info.signal) {
        std::string s = "killed by signal " + std::to_string(*info.signal) + " (" +
                        std::string(signal_name(*info.signal)) + ")";
        if (info.core_dumped) s += ", core dumped";
        return s;
    }
    return "ended with an unknown status";
}

}  // namespace cow
