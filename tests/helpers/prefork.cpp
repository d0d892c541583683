// A preforking server in miniature (gunicorn --preload, uWSGI): the master loads a table,
// says READY=1 when NOTIFY_SOCKET is set, and only later forks its workers, which at once
// rewrite part of the table (copy-on-write erosion) and then idle.
//
//   prefork TABLE_MIB K W [--fork-on-usr1] [--ready FILE]
//
// The master touches TABLE_MIB MiB of private anonymous memory, then forks K children (with
// --fork-on-usr1: when SIGUSR1 arrives). Every child rewrites the same first W MiB of the
// table, so each holds W MiB of its own and the master is left the only mapper of those
// original pages. When every child has written, FILE gets one line per process
// ("pid child", then "pid master"). SIGTERM ends the master and, with it, the children.
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

volatile sig_atomic_t go = 0;

void append(const std::string& path, const std::string& line) {
    if (path.empty()) return;
    int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) _exit(71);
    if (write(fd, line.data(), line.size()) < 0) _exit(72);
    close(fd);
}

// READY=1 to NOTIFY_SOCKET (a path, or an abstract name when it starts with '@').
void notify_ready() {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@')) return;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(path);
    if (len < 2 || len >= sizeof sa.sun_path) return;
    std::memcpy(sa.sun_path, path, len);
    if (path[0] == '@') sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) _exit(73);
    const char msg[] = "READY=1";
    if (sendto(fd, msg, sizeof msg - 1, MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len)) < 0)
        _exit(74);
    close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) return 64;
    const std::size_t table = std::strtoul(argv[1], nullptr, 10) << 20;
    const int k = std::atoi(argv[2]);
    std::size_t w = std::strtoul(argv[3], nullptr, 10) << 20;
    if (w > table) w = table;
    bool on_usr1 = false;
    std::string ready;
    for (int i = 4; i < argc; ++i) {
        std::string opt = argv[i];
        if (opt == "--fork-on-usr1") on_usr1 = true;
        if (opt == "--ready" && i + 1 < argc) ready = argv[++i];
    }
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, nullptr);  // taken with sigwait, never lost before it

    void* p = mmap(nullptr, table, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 70;
    auto* t = static_cast<unsigned char*>(p);
    // No transparent huge pages: one written byte must copy 4 KiB, not 2 MiB.
    madvise(t, table, MADV_NOHUGEPAGE);
    for (std::size_t i = 0; i < table; i += 4096)
        t[i] = 1;
    notify_ready();
    if (on_usr1) {
        int sig = 0;
        sigwait(&usr1, &sig);
    }

    int done[2];
    if (pipe(done) < 0) return 75;
    for (int c = 0; c < k; ++c) {
        pid_t pid = fork();
        if (pid < 0) return 76;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(done[0]);
            for (std::size_t i = 0; i < w; i += 4096)
                t[i] = static_cast<unsigned char>(2 + c);
            append(ready, std::to_string(getpid()) + " child\n");
            if (write(done[1], "x", 1) != 1) _exit(77);
            for (;;)
                pause();
        }
    }
    close(done[1]);
    for (int c = 0; c < k; ++c) {
        char x;
        if (read(done[0], &x, 1) != 1) return 78;
    }
    append(ready, std::to_string(getpid()) + " master\n");
    for (;;)
        pause();
}
