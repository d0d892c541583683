// Text that echoes user input (names, paths, arguments) in messages and tables: control and
// invisible characters made visible, so that "web<U+200B>" cannot pass for "web" and an
// escape sequence in a name cannot repaint the operator's terminal.
#pragma once

#include <string>
#include <string_view>

namespace cow {

enum class Newlines {
    escape,  // a quoted value: "a\nb" stays on one line
    keep,    // a whole message whose lines are its layout (a list of config errors)
};

// Replaces, with a visible escape:
//   - C0 controls and DEL: \n, \r, \t, else \xNN (\n is kept with Newlines::keep);
//   - bytes that are not valid UTF-8: \xNN;
//   - C1 controls, and code points that print as nothing or as a plain space: zero-width
//     characters and joiners, bidi controls, BOM, soft hyphen, variation selectors, tags,
//     fillers and non-ASCII spaces: \uXXXX (\UXXXXXXXX above U+FFFF).
// Everything else, other scripts and emoji included, is kept. A backslash is kept too, so
// escaping is idempotent: text already escaped (say by the daemon) comes back unchanged.
std::string escape_invisible(std::string_view text, Newlines newlines = Newlines::escape);

}  // namespace cow
