// Splits a byte stream into lines: on '\n', with a maximum length. A longer line is cut into
// pieces, each but the last marked as continued, so no single line can make memory grow.
// Bytes pass through untouched: invalid UTF-8 and NULs do not disturb the line structure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cow {

class LineSplitter {
  public:
    explicit LineSplitter(std::size_t max_line) : max_(max_line) {}

    // Calls emit(line, continued) for each complete line (without its '\n') in data, keeping
    // a partial tail for the next call. continued: the line goes on in the next piece.
    template <class Emit>
    void feed(std::string_view data, Emit&& emit) {
        while (!data.empty()) {
            const std::size_t room = max_ - partial_.size();
            const std::size_t nl = data.substr(0, room).find('\n');
            if (nl != std::string_view::npos) {
                if (partial_.empty()) {
                    emit(data.substr(0, nl), false);
                } else {
                    partial_.append(data.substr(0, nl));
                    emit(std::string_view(partial_), false);
                    partial_.clear();
                }
                data.remove_prefix(nl + 1);
                continue;
            }
            if (data.size() < room) {
                partial_.append(data);
                return;
            }
            // No newline within the limit: cut a piece of exactly max_ bytes.
            partial_.append(data.substr(0, room));
            data.remove_prefix(room);
            emit(std::string_view(partial_), true);
            partial_.clear();
        }
    }

    // At EOF: the partial last line, if any, as a line of its own.
    template <class Emit>
    void flush(Emit&& emit) {
        if (partial_.empty()) return;
        emit(std::string_view(partial_), false);
        partial_.clear();
    }

    std::size_t pending() const { return partial_.size(); }
    // The partial tail, for a daemon image that hands its pipes to the next (cowctl upgrade).
    const std::string& partial() const { return partial_; }
    void restore(std::string partial) { partial_ = std::move(partial); }
    std::size_t max_line() const { return max_; }

  private:
    std::size_t max_;
    std::string partial_;
};

}  // namespace cow
