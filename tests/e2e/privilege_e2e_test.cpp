// Least privilege: a worker's report of itself matches its pool's user, groups, limits,
// umask and environment exactly; a non-root daemon cannot be asked to switch users.
#include <grp.h>
#include <pwd.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;

namespace {

class Privilege : public DaemonFixture {
  protected:
    void SetUp() override {
        DaemonFixture::SetUp();
        if (geteuid() != 0) GTEST_SKIP() << "needs root";
        if (!getpwnam("nobody") || !getgrnam("nogroup") || !getgrnam("adm") || !getgrnam("tty"))
            GTEST_SKIP() << "needs the users and groups of a Debian system";
        chmod(dir.c_str(), 0777);  // nobody writes its report here
    }
};

TEST_F(Privilege, WorkerReportMatchesTheConfigExactly) {
    const std::string rep = (dir / "report").string();
    start("  locked:\n    command: [\"" + bin("probe") + "\", \"" + rep +
          "\", --stay]\n    user: nobody\n    group: nogroup\n"
          "    supplementary_groups: [adm, tty]\n    umask: \"027\"\n"
          "    rlimits: {nofile: 1024, core: 0, nproc: {soft: 500, hard: 1000}}\n"
          "    no_new_privs: true\n    oom_score_adj: 500\n    clear_env: true\n"
          "    env: {FOO: bar, HOME: /srv/custom}\n");
    ASSERT_TRUE(WaitFor([&] { return fs::exists(rep); })) << slurp(log);
    std::string r = slurp(rep);
    const std::string nobody = std::to_string(getpwnam("nobody")->pw_uid);
    const std::string nogroup = std::to_string(getgrnam("nogroup")->gr_gid);
    EXPECT_EQ(field(r, "uid"), nobody + "," + nobody + "," + nobody + "," + nobody);
    EXPECT_EQ(field(r, "gid"), nogroup + "," + nogroup + "," + nogroup + "," + nogroup);
    EXPECT_EQ(field(r, "groups"), std::to_string(getgrnam("adm")->gr_gid) + "," +
                                      std::to_string(getgrnam("tty")->gr_gid))
        << "exactly the configured groups: none of root's remain";
    EXPECT_EQ(field(r, "capeff"), "0000000000000000");
    EXPECT_EQ(field(r, "nnp"), "1");
    EXPECT_EQ(field(r, "nofile"), "1024/1024");
    EXPECT_EQ(field(r, "core"), "0/0");
    EXPECT_EQ(field(r, "nproc"), "500/1000");
    EXPECT_EQ(field(r, "umask"), "0027");
    EXPECT_EQ(field(r, "oom"), "500");
    EXPECT_EQ(field(r, "foo"), "bar");
    EXPECT_EQ(field(r, "user"), "nobody");
    EXPECT_EQ(field(r, "home"), "/srv/custom") << "the pool's env wins over the user's HOME";
    // clear_env: only what we set (PATH, HOME, USER, LOGNAME, SHELL, FOO, COWHERD_*).
    EXPECT_LE(std::stoi(field(r, "envcount")), 9) << r;
    EXPECT_EQ(field(r, "fds"), "0,1,2");
}

TEST_F(Privilege, DefaultGroupsAreTheUsersOwnNotRoots) {
    const std::string rep = (dir / "report").string();
    start("  plain:\n    command: [\"" + bin("probe") + "\", \"" + rep +
          "\", --stay]\n    user: nobody\n");
    ASSERT_TRUE(WaitFor([&] { return fs::exists(rep); })) << slurp(log);
    std::string groups = field(slurp(rep), "groups");
    // initgroups semantics for nobody: its primary group only, never root's 0.
    EXPECT_EQ(groups, std::to_string(getpwnam("nobody")->pw_gid));
}

TEST_F(Privilege, UnknownUsersAndANonRootDaemonAreConfigErrors) {
    write_config(
        "  a:\n    command: [sleep, \"1\"]\n    user: no-such-user-here\n"
        "    rlimits: {nofiles: 10}\n");
    auto r = run({bin("cowherd"), "--check", "-c", config});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("pools.a.user: no user named \"no-such-user-here\""), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("unknown limit \"nofiles\""), std::string::npos) << r.err;
    // The same valid config checked by a non-root cowherd: switching users needs root.
    write_config("  a:\n    command: [sleep, \"1\"]\n    user: root\n");
    chmod(config.c_str(), 0644);
    auto nr = run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin("cowherd"),
                   "--check", "-c", config});
    EXPECT_EQ(nr.code, 2) << nr.out << nr.err;
    EXPECT_NE(nr.err.find("needs cowherd to run as root"), std::string::npos) << nr.err;
}

}  // namespace
