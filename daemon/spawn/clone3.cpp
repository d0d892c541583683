#include "daemon/spawn/clone3.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

namespace cow::spawn::detail {

#if defined(__x86_64__)
// long cow_raw_clone3(struct clone_args* args, size_t size, int (*fn)(void*), void* arg)
// The child returns from the syscall on its new stack, where this function's frame does not
// exist: it must call fn and exit without ever returning. r8/r9 survive the syscall.
extern "C" long cow_raw_clone3(struct clone_args*, unsigned long, int (*)(void*), void*);
asm(R"(
    .text
    .globl cow_raw_clone3
    .type cow_raw_clone3, @function
cow_raw_clone3:
    mov %rdx, %r8
    mov %rcx, %r9
    mov $435, %eax
    syscall
    test %rax, %rax
    jnz 1f
    xor %ebp, %ebp
    mov %r9, %rdi
    call *%r8
    mov %eax, %edi
    mov $231, %eax
    syscall
    hlt
1:
    ret
    .size cow_raw_clone3, .-cow_raw_clone3
)");

long clone3_into_cgroup(int (*fn)(void*), void* arg, char* stack_base, unsigned long stack_size,
                        int cgroup_fd) {
    struct clone_args ca;
    std::memset(&ca, 0, sizeof ca);
    ca.flags = static_cast<unsigned>(kShareVm | kShareFiles) | CLONE_INTO_CGROUP;
    ca.exit_signal = SIGCHLD;
    ca.stack = reinterpret_cast<std::uint64_t>(stack_base);
    ca.stack_size = stack_size;
    ca.cgroup = static_cast<std::uint64_t>(cgroup_fd);
    return cow_raw_clone3(&ca, sizeof ca, fn, arg);
}
#else
long clone3_into_cgroup(int (*)(void*), void*, char*, unsigned long, int) {
    return -ENOSYS;
}
#endif

}  // namespace cow::spawn::detail
