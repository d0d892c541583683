// Decoding of waitpid() statuses into what users want to read.
#pragma once

#include <optional>
#include <string>

namespace cow {

struct ExitInfo {
    std::optional<int> code;    // set when the process called exit
    std::optional<int> signal;  // set when a signal killed it
    bool core_dumped = false;

    bool success() const { return code && *code == 0; }
    // The shell convention: the exit code, or 128 + signal.
    int shell_code() const { return code ? *code : 128 + signal.value_or(0); }
    bool operator==(const ExitInfo&) const = default;
};

ExitInfo decode_wait_status(int status);

// "exited with status 1", "killed by signal 9 (KILL)", "killed by signal 11 (SEGV), core dumped".
std::string describe(const ExitInfo& info);

}  // namespace cow
