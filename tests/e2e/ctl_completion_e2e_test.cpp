// The bash completion of cowctl (ctl/completion/cowctl.bash), run by bash against a real
// daemon: an option's value is never taken for the verb (issue 11: `--timeout N`).
#include <set>

#include "tests/e2e/harness.hpp"

using namespace cow::test;

namespace {

class CtlCompletion : public DaemonFixture {
  protected:
    // What completing the last of `words` offers (words[0] is "cowctl").
    std::set<std::string> complete(const std::vector<std::string>& words) {
        std::vector<std::string> argv = {
            "bash",
            "--norc",
            "--noprofile",
            "-c",
            "source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _cowctl; "
            "printf '%s\\n' \"${COMPREPLY[@]}\"",
            "bash",
            std::string(COWHERD_SOURCE_DIR) + "/ctl/completion/cowctl.bash"};
        argv.insert(argv.end(), words.begin(), words.end());
        const char* path = std::getenv("PATH");
        auto r =
            run(argv, std::chrono::seconds(20),
                {"PATH=" + std::string(COWHERD_BIN_DIR) + ":" + (path ? path : "/usr/bin:/bin")});
        EXPECT_EQ(r.code, 0) << r.err;
        std::set<std::string> out;
        std::istringstream in(r.out);
        for (std::string l; std::getline(in, l);)
            if (!l.empty()) out.insert(l);
        return out;
    }
    std::vector<std::string> with_socket(std::vector<std::string> rest) {
        std::vector<std::string> w = {"cowctl", "--socket", socket};
        w.insert(w.end(), rest.begin(), rest.end());
        return w;
    }
};

TEST_F(CtlCompletion, AnOptionValueIsNotTakenForTheVerb) {
    start("  web:\n    command: [sleep, \"100000\"]\n");
    auto got = complete(with_socket({"--timeout", "5", ""}));
    EXPECT_TRUE(got.count("status") && got.count("restart")) << "verbs after --timeout 5";
    EXPECT_FALSE(got.count("all"));
    EXPECT_TRUE(complete({"cowctl", "--timeout", ""}).empty()) << "a number comes next";
    EXPECT_EQ(complete({"cowctl", "--timeout", "=", "5", "st"}),
              (std::set<std::string>{"status", "start", "stop"}));
    got = complete(with_socket({"--timeout", "5", "signal", ""}));
    EXPECT_TRUE(got.count("HUP")) << "the signal comes first";
    EXPECT_FALSE(got.count("web"));
    got = complete(with_socket({"--timeout", "5", "stop", ""}));
    EXPECT_EQ(got, (std::set<std::string>{"all", "web", "web.0"}));
}

TEST_F(CtlCompletion, ArgumentsAreCountedAfterFlags) {
    start("  web:\n    command: [sleep, \"100000\"]\n");
    EXPECT_TRUE(complete(with_socket({"signal", "--tree", ""})).count("TERM"));
    EXPECT_EQ(complete(with_socket({"signal", "HUP", "w"})),
              (std::set<std::string>{"web", "web.0"}));
    EXPECT_TRUE(complete(with_socket({"signal", "HUP", "web", ""})).empty());
    EXPECT_TRUE(complete(with_socket({"restart", "--batch", ""})).empty());
    EXPECT_TRUE(complete(with_socket({"restart", "--batch", "2", "w"})).count("web"));
    EXPECT_TRUE(complete(with_socket({"logs", "-n", "5", "w"})).count("web.0"));
    EXPECT_TRUE(complete(with_socket({"scale", "web", ""})).empty()) << "a count comes next";
    EXPECT_EQ(complete(with_socket({"mem", "--sort", ""})),
              (std::set<std::string>{"pss", "uss", "rss"}));
    auto flags = complete(with_socket({"restart", "--"}));
    EXPECT_TRUE(flags.count("--progress") && flags.count("--timeout") && flags.count("--batch"));
}

}  // namespace
