// Well-known paths shared by the daemon and cowctl.
#pragma once

#include <string>

namespace cow {

// The control socket used when neither config, --socket nor $COWHERD_SOCKET names one:
// /run/cowherd/cowherd.sock for root; $XDG_RUNTIME_DIR/cowherd/cowherd.sock, or else
// /tmp/cowherd-UID/cowherd.sock, for other users.
std::string default_socket_path();

}  // namespace cow
