// `cowctl top`'s live view: a full screen redrawn from one `top` request per refresh, with keys
// to sort, filter, open a worker's process tree or output, and restart, stop, start or scale.
#pragma once

#include <string>

#include "ctl/top.hpp"
#include "ctl/top_link.hpp"
#include "ctl/top_model.hpp"

namespace cow::ctl::top {

// Whether the terminal on stdout is known and can move its cursor (TERM=dumb cannot).
bool terminal_can_address_cursor();

// Until q, Ctrl-C, SIGTERM or SIGHUP. `first` is the reply to the request made on `link`'s
// first connection; `socket` is where the write requests connect.
void run_live(const std::string& socket, const TopOptions& o, Link& link, Snapshot first,
              bool utf8);

}  // namespace cow::ctl::top
