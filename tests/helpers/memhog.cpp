// Memory shapes with a known answer, for the accuracy tests of `cowctl mem`.
//
//   memhog A K W [--shared S] [--write-on-usr1] [--ready FILE]
//
// Allocates and touches A MiB of private anonymous memory, optionally maps S MiB of
// MAP_SHARED|MAP_ANONYMOUS memory and touches it, then forks K children. Each child writes W
// MiB of the private region (copy-on-write makes those pages its own) and touches the shared
// region. With --write-on-usr1 the children wait for SIGUSR1 before writing. When every child
// has done its part, FILE gets one line per process ("pid role") and all of them idle.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace {

volatile sig_atomic_t go = 0;

unsigned char* map(std::size_t bytes, int flags) {
    if (bytes == 0) return nullptr;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(70);
    // No transparent huge pages: the answer must not depend on THP policy.
    madvise(p, bytes, MADV_NOHUGEPAGE);
    return static_cast<unsigned char*>(p);
}

void touch(unsigned char* p, std::size_t bytes, unsigned char v) {
    for (std::size_t i = 0; i < bytes; i += 4096)
        p[i] = v;
}

void append(const std::string& path, const std::string& line) {
    int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) _exit(71);
    if (write(fd, line.data(), line.size()) < 0) _exit(72);
    close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) return 64;
    const std::size_t a = std::strtoul(argv[1], nullptr, 10) << 20;
    const int k = std::atoi(argv[2]);
    const std::size_t w = std::strtoul(argv[3], nullptr, 10) << 20;
    std::size_t s = 0;
    bool on_usr1 = false;
    std::string ready;
    for (int i = 4; i < argc; ++i) {
        std::string opt = argv[i];
        if (opt == "--shared" && i + 1 < argc) s = std::strtoul(argv[++i], nullptr, 10) << 20;
        if (opt == "--write-on-usr1") on_usr1 = true;
        if (opt == "--ready" && i + 1 < argc) ready = argv[++i];
    }
    // USR1 only matters to children; the parent must survive a `signal --tree USR1`.
    struct sigaction sa {};
    sa.sa_handler = [](int) { go = 1; };
    sa.sa_flags = SA_RESTART;  // the parent blocks in read() below
    sigaction(SIGUSR1, &sa, nullptr);

    unsigned char* priv = map(a, MAP_PRIVATE);
    unsigned char* shared = map(s, MAP_SHARED);
    touch(priv, a, 1);
    touch(shared, s, 1);

    int done[2];
    if (pipe(done) < 0) return 73;
    for (int c = 0; c < k; ++c) {
        pid_t pid = fork();
        if (pid < 0) return 74;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(done[0]);
            touch(shared, s, static_cast<unsigned char>(2 + c));
            if (on_usr1)
                while (!go)
                    pause();
            touch(priv, w < a ? w : a, static_cast<unsigned char>(2 + c));
            if (!ready.empty()) append(ready, std::to_string(getpid()) + " child\n");
            if (write(done[1], "x", 1) != 1) _exit(75);
            for (;;)
                pause();
        }
    }
    close(done[1]);
    for (int c = 0; c < k; ++c) {
        char x;
        if (read(done[0], &x, 1) != 1) return 76;
    }
    if (!ready.empty()) append(ready, std::to_string(getpid()) + " parent\n");
    for (;;)
        pause();
}
