#include "daemon/os/reaper.hpp"

#include <cerrno>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cow {

int reap_all(const std::function<void(pid_t, int)>& on_exit, int max) {
    int n = 0;
    while (n < max) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            ++n;
            on_exit(pid, status);
            continue;
        }
        if (pid < 0 && errno == EINTR) continue;
        return n;  // 0: children remain but none exited; ECHILD: no children at all
    }
    return n;
}

std::size_t reap_each(const std::vector<pid_t>& pids,
                      const std::function<void(pid_t, int)>& on_exit,
                      const std::function<bool()>& stop) {
    std::size_t looked = 0;
    for (pid_t pid : pids) {
        if (stop()) break;
        ++looked;
        int status = 0;
        pid_t r;
        do {
            r = waitpid(pid, &status, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == pid) on_exit(pid, status);
    }
    return looked;
}

bool become_subreaper() {
    if (getpid() == 1) return true;
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
}

}  // namespace cow
