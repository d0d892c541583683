// A demo worker: prints a heartbeat line now and then and stops cleanly on SIGTERM.
#include <cstdio>
#include <cstdlib>

#include <signal.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop = 0;

int main(int argc, char** argv) {
    int every = argc > 1 ? std::atoi(argv[1]) : 5;
    if (every < 1) every = 1;
    struct sigaction sa {};
    sa.sa_handler = [](int) { stop = 1; };
    sigaction(SIGTERM, &sa, nullptr);
    const char* pool = std::getenv("COWHERD_POOL");
    const char* worker = std::getenv("COWHERD_WORKER");
    std::printf("ticker %s.%s (pid %d) up\n", pool ? pool : "?", worker ? worker : "?", getpid());
    std::fflush(stdout);
    for (unsigned n = 1; !stop; ++n) {
        timespec ts{every, 0};
        if (nanosleep(&ts, nullptr) != 0) continue;
        std::printf("tick %u\n", n);
        std::fflush(stdout);
    }
    std::printf("got TERM, bye\n");
    return 0;
}
