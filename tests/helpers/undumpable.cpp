// Marks itself non-dumpable, which makes /proc/self/smaps* unreadable to other processes of
// the same (non-root) uid, then waits. Tests that a memory report says "unreadable", not 0.
#include <sys/prctl.h>
#include <unistd.h>

int main() {
    if (prctl(PR_SET_DUMPABLE, 0) != 0) return 1;
    for (;;)
        pause();
}
