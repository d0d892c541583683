#include "daemon/os/reaper.hpp"

#include <cerrno>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cow {

int reap_all(const std::function<void(pid_t, int)>& on_exit) {
    int n = 0;
    for (;;) {
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
}

bool become_subreaper() {
    if (getpid() == 1) return true;
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
}

}  // namespace cow
