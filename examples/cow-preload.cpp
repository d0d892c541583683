// A demo "preforking" worker: loads a table of about 64 MiB (the way an app server preloads
// its code and data), forks 3 children that each write a different part of it, and then all
// idle. `cowctl mem preload` shows what stays shared (copy-on-write) and what each child made
// private.
//
//   cow-preload [TABLE_MIB=64] [CHILDREN=3] [WRITE_MIB=8]
//
// Child i writes WRITE_MIB * (i + 1) MiB, one MiB every half second, so the erosion differs
// between them and grows while you watch (COW_LOST).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop = 0;

int main(int argc, char** argv) {
    const std::size_t table_mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 64;
    const int children = argc > 2 ? std::atoi(argv[2]) : 3;
    const std::size_t write_mib = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 8;
    const std::size_t bytes = table_mib << 20;
    auto* table = static_cast<unsigned char*>(std::malloc(bytes));
    if (!table) return 1;
    for (std::size_t i = 0; i < bytes; ++i)
        table[i] = static_cast<unsigned char>(i * 31);
    std::printf("preload: %zu MiB table loaded in pid %d; forking %d children\n", table_mib,
                getpid(), children);
    std::fflush(stdout);

    struct sigaction sa {};
    sa.sa_handler = [](int) { stop = 1; };
    sigaction(SIGTERM, &sa, nullptr);
    std::vector<pid_t> kids;
    for (int c = 0; c < children; ++c) {
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            std::size_t n = std::min(bytes, (write_mib << 20) * static_cast<std::size_t>(c + 1));
            for (std::size_t off = 0; off < n && !stop; off += 1 << 20) {
                std::memset(table + off, c + 1, std::min<std::size_t>(1 << 20, n - off));
                timespec half{0, 500'000'000};
                nanosleep(&half, nullptr);
            }
            std::printf("preload child %d (pid %d): wrote %zu MiB of the table\n", c, getpid(),
                        n >> 20);
            std::fflush(stdout);
            while (!stop)
                pause();
            _exit(0);
        }
        if (pid > 0) kids.push_back(pid);
    }
    while (!stop)
        pause();
    for (pid_t k : kids)
        kill(k, SIGTERM);
    for (pid_t k : kids)
        waitpid(k, nullptr, 0);
    return 0;
}
