// `cowherd --check` warns about a command[0] this host cannot run, naming the path (issue 11).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/summary.hpp"

namespace cow::config {
namespace {

namespace fs = std::filesystem;

class CommandCheck : public ::testing::Test {
  protected:
    fs::path dir;
    void SetUp() override {
        char tmpl[] = "/tmp/cowherd-check-XXXXXX";
        dir = mkdtemp(tmpl);
        make("bin/tool", 0755);
        make("bin/data", 0644);
        fs::create_directories(dir / "bin/subdir");
        make("other/tool2", 0755);
    }
    void TearDown() override { fs::remove_all(dir); }
    void make(const std::string& rel, mode_t mode) {
        fs::create_directories((dir / rel).parent_path());
        std::ofstream(dir / rel) << "#!/bin/sh\n";
        ::chmod((dir / rel).c_str(), mode);
    }
    // The warnings for one pool `p` with `command` and extra keys.
    std::vector<std::string> warnings(const std::string& command, const std::string& extra = "",
                                      const std::string& daemon_path = "/nonexistent-dir") {
        auto r = load_text("pools:\n  p:\n    command: " + command + "\n" + extra, "t.yaml",
                           dir.string());
        EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
        if (!r.ok()) return {"(invalid)"};
        return command_warnings(*r.config, daemon_path);
    }
    std::string d() const { return dir.string(); }
};

TEST_F(CommandCheck, AnExecutableFileIsFine) {
    EXPECT_TRUE(warnings("[\"" + d() + "/bin/tool\", --flag]").empty());
    EXPECT_TRUE(warnings("[./tool]", "    cwd: bin\n").empty()) << "relative to the pool's cwd";
    EXPECT_TRUE(warnings("[tool]", "", d() + "/nonexistent:" + d() + "/bin").empty())
        << "found in the daemon's PATH";
    EXPECT_TRUE(warnings("[tool2]", "    env: {PATH: \"" + d() + "/other\"}\n").empty())
        << "the pool's own PATH wins";
}

TEST_F(CommandCheck, EachProblemNamesThePath) {
    EXPECT_EQ(warnings("[\"" + d() + "/bin/missing\"]"),
              std::vector<std::string>{"pool p: command " + d() + "/bin/missing does not exist"});
    EXPECT_EQ(warnings("[\"" + d() + "/bin/data\"]"),
              std::vector<std::string>{"pool p: command " + d() +
                                       "/bin/data is not executable (mode 0644)"});
    EXPECT_EQ(warnings("[\"" + d() + "/bin/subdir\"]"),
              std::vector<std::string>{"pool p: command " + d() + "/bin/subdir is a directory"});
    EXPECT_EQ(warnings("[./tool]", "    cwd: other\n"),
              std::vector<std::string>{"pool p: command " + d() + "/other/./tool does not exist"});
}

TEST_F(CommandCheck, ANameIsSearchedInTheWorkersPath) {
    EXPECT_EQ(warnings("[nosuchtool]", "", d() + "/bin:" + d() + "/other"),
              std::vector<std::string>{"pool p: command nosuchtool is not found in PATH " + d() +
                                       "/bin:" + d() + "/other"});
    // Found, but not executable: said too.
    EXPECT_EQ(
        warnings("[data]", "", d() + "/bin"),
        std::vector<std::string>{"pool p: command data is not found in PATH " + d() + "/bin (" +
                                 d() + "/bin/data is not executable (mode 0644))"});
    // The daemon's PATH is not the worker's when the pool sets or clears it.
    EXPECT_EQ(warnings("[tool]", "    env: {PATH: \"" + d() + "/other\"}\n", d() + "/bin").size(),
              1u);
    EXPECT_EQ(warnings("[tool]", "    clear_env: true\n", d() + "/bin").size(), 1u);
}

TEST_F(CommandCheck, InvisibleCharactersInThePathAreShown) {
    auto w = warnings("[\"" + d() + "/bin/tool\xe2\x80\x8b\"]");
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0], "pool p: command " + d() + "/bin/tool\\u200b does not exist");
}

}  // namespace
}  // namespace cow::config
