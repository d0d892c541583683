#include "core/paths.hpp"

#include <cstdlib>

#include <unistd.h>

namespace cow {

std::string default_socket_path() {
    if (geteuid() == 0) return "/run/cowherd/cowherd.sock";
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && xdg[0] == '/')
        return std::string(xdg) + "/cowherd/cowherd.sock";
    return "/tmp/cowherd-" + std::to_string(geteuid()) + "/cowherd.sock";
}

}  // namespace cow
