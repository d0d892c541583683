// Exits at once with the code given as argv[1] (default 1), or kills itself with the signal
// given as "sig:N".
#include <cstdlib>
#include <cstring>

#include <signal.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc > 1 && std::strncmp(argv[1], "sig:", 4) == 0) {
        int sig = std::atoi(argv[1] + 4);
        signal(sig, SIG_DFL);
        kill(getpid(), sig);
        return 100;
    }
    return argc > 1 ? std::atoi(argv[1]) : 1;
}
