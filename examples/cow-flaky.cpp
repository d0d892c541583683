// A demo worker that crashes after a random while, to show restarts in `cowctl status`.
#include <cstdio>
#include <cstdlib>

#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
    int max = argc > 1 ? std::atoi(argv[1]) : 20;
    if (max < 2) max = 2;
    srand(static_cast<unsigned>(getpid()));
    int life = 1 + rand() % max;
    std::printf("flaky (pid %d): I will crash in %d s\n", getpid(), life);
    std::fflush(stdout);
    timespec ts{life, 0};
    nanosleep(&ts, nullptr);
    std::printf("flaky: crashing now\n");
    std::fflush(stdout);
    return 3;
}
