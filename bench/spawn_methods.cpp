// Why cowherd spawns with clone(CLONE_VM|CLONE_VFORK) rather than fork: fork copies the
// parent's page tables, so its cost grows with the parent's resident size.
//
//   bench_spawn_methods [PARENT_MIB=1024] [N=1000]
//
// Touches PARENT_MIB of memory, then starts N children of /bin/true with each method and
// reaps them, printing the wall time per method and the ratio to posix_spawn.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

char* const kArgv[] = {const_cast<char*>("/bin/true"), nullptr};

alignas(16) char g_stack[64 * 1024];

int vfork_child(void*) {
    execve("/bin/true", kArgv, environ);
    _exit(127);
}

using Clock = std::chrono::steady_clock;

template <class F>
double time_spawns(int n, F spawn_one) {
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        if (spawn_one() < 0) {
            std::perror("spawn");
            std::exit(1);
        }
    }
    int st;
    while (wait(&st) > 0) {
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    long mib = argc > 1 ? std::atol(argv[1]) : 1024;
    int n = argc > 2 ? std::atoi(argv[2]) : 1000;
    std::size_t bytes = static_cast<std::size_t>(mib) << 20;
    char* mem = static_cast<char*>(
        mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (mem == MAP_FAILED) return 1;
    for (std::size_t i = 0; i < bytes; i += 4096)
        mem[i] = static_cast<char>(i);

    double t_posix = time_spawns(n, [] {
        pid_t pid;
        return posix_spawn(&pid, "/bin/true", nullptr, nullptr, kArgv, environ) == 0 ? pid : -1;
    });
    double t_clone = time_spawns(n, [] {
        return clone(vfork_child, g_stack + sizeof g_stack, CLONE_VM | CLONE_VFORK | SIGCHLD,
                     nullptr);
    });
    double t_fork = time_spawns(n, [] {
        pid_t pid = fork();
        if (pid == 0) {
            execve("/bin/true", kArgv, environ);
            _exit(127);
        }
        return pid;
    });
    std::printf("parent RSS %ld MiB, %d children of /bin/true each\n", mib, n);
    std::printf("  posix_spawn          %7.3f s  (1.00x)\n", t_posix);
    std::printf("  clone(VM|VFORK)      %7.3f s  (%.2fx)\n", t_clone, t_clone / t_posix);
    std::printf("  fork+exec            %7.3f s  (%.2fx)\n", t_fork, t_fork / t_posix);
    return 0;
}
