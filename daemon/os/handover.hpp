// In-place upgrade, the OS side: what crosses execve from one daemon image to the next. The
// state travels as text in a memfd, and every fd the state names stays open because its
// close-on-exec flag is cleared just before execve (and set again by the image that adopts it),
// so nothing else the daemon holds leaks into the new image.
#pragma once

#include <string>
#include <variant>
#include <vector>

namespace cow::handover {

// A memfd holding text, close-on-exec until inherit() says otherwise. Or why not.
std::variant<int, std::string> to_memfd(const std::string& name, const std::string& text);
// The whole content of a memfd (or any file) from offset 0, bounded by `max` bytes.
std::variant<std::string, std::string> read_all(int fd, std::size_t max = 256u << 20);

// Clears (keep) or sets close-on-exec on each fd; false if any is not an open fd.
bool inherit(const std::vector<int>& fds, bool keep);
// Sets close-on-exec on every fd above 2 that is not in `keep` (sorted): whatever a library
// opened without it (asio accepts without SOCK_CLOEXEC and sets it a moment later) must not
// leak into the next image. Async-signal-safe: one close_range call per gap.
void seal_others(const std::vector<int>& keep);

// The daemon's own binary, opened now, so that a rollback can execute it even after a package
// upgrade has replaced or removed the file it was started from. -1 if it cannot be opened.
int open_self_exe();
// The path the daemon's binary was started from ("/usr/sbin/cowherd"), as the kernel has it,
// without the " (deleted)" mark a replaced file gets.
std::string self_exe_path();

// Replaces the process image: the binary at path, or the open file exe_fd when path is empty.
// Returns only on failure, with the reason.
std::string exec(const std::string& path, int exe_fd, const std::vector<std::string>& argv);

// Whether path names an executable regular file; the reason when it does not.
std::string check_executable(const std::string& path);

}  // namespace cow::handover
