// Ignores SIGTERM and waits forever: only SIGKILL ends it. Writes "ready" to argv[1] (if
// given) once TERM is ignored, so a test knows when the race is over.
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

int main(int argc, char** argv) {
    signal(SIGTERM, SIG_IGN);
    if (argc > 1) {
        std::string tmp = std::string(argv[1]) + ".tmp";
        int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            if (write(fd, "ready\n", 6) < 0) return 2;
            close(fd);
            rename(tmp.c_str(), argv[1]);
        }
    }
    for (;;)
        pause();
}
