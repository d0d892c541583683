// What cowctl prints of the items a restart or a reload streams before its final reply: the
// reload plan (an object with "pools", sent before it is applied) and one step per worker
// replaced. Under --json, stdout carries only the final document; the items go to stderr as
// JSON lines when --progress asks for them, and nowhere otherwise.
#pragma once

#include <boost/json.hpp>

namespace cow::ctl {

class Progress {
  public:
    Progress(bool json, bool json_lines);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void item(const boost::json::value& v);
    // Erases the progress bar, if one is drawn, before the final output.
    void clear_bar();
    // Whether a plan item was printed (the final reply then need not repeat it).
    bool plan_shown() const { return plan_shown_; }

  private:
    bool json_, json_lines_, tty_;
    bool bar_drawn_ = false, plan_shown_ = false;
};

}  // namespace cow::ctl
