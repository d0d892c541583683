#include <string>

#include <gtest/gtest.h>

#include "core/proc/tree.hpp"

#ifndef COWHERD_TEST_DATA
#define COWHERD_TEST_DATA "/work/main/tests/data"
#endif

namespace cow::proc {
namespace {

// See tests/data/proc/make_fakeroots.py for the processes in these trees.
const std::string kRoot = std::string(COWHERD_TEST_DATA) + "/proc/fakeroot";
const std::string kRootNoChildren = std::string(COWHERD_TEST_DATA) + "/proc/fakeroot_nochildren";

// "100(200(300),201,202)": the shape, for compact assertions.
std::string shape(const ProcNode& n) {
    std::string s = std::to_string(n.pid);
    if (n.children.empty()) return s;
    s += '(';
    for (std::size_t i = 0; i < n.children.size(); ++i) {
        if (i) s += ',';
        s += shape(n.children[i]);
    }
    return s + ')';
}

class ProcTree : public ::testing::TestWithParam<std::string> {};

TEST_P(ProcTree, BuildsSubtreeSkippingVanishedAndReparented) {
    ProcReader r(GetParam());
    auto t = build_subtree(r, 100);
    ASSERT_TRUE(t.ok());
    // 203 is listed but gone; 205 is listed (children file) but its stat says ppid 1.
    EXPECT_EQ(shape(t.value.root), "100(200(300),201,202)");
    EXPECT_EQ(t.value.nodes, 5u);
    EXPECT_FALSE(t.value.truncated);

    const ProcNode& root = t.value.root;
    EXPECT_EQ(root.ppid, 1);
    EXPECT_EQ(root.starttime, 1000u);
    EXPECT_EQ(root.comm, "cowherd");
    EXPECT_EQ(root.cmdline, "/usr/bin/cowherd -c /etc/c.yaml");
    const ProcNode& w0 = root.children[0];
    EXPECT_EQ(w0.comm, "(a) (b)");
    EXPECT_EQ(w0.cmdline, "python3 -m app");
    EXPECT_EQ(w0.children[0].cmdline, "grand child");
    const ProcNode& zombie = root.children[1];
    EXPECT_EQ(zombie.state, 'Z');
    EXPECT_EQ(zombie.cmdline, "[w 1]");  // no argv: shown as ps does
}

TEST_P(ProcTree, RootGone) {
    ProcReader r(GetParam());
    EXPECT_EQ(build_subtree(r, 999).status, ReadStatus::gone);
}

TEST_P(ProcTree, CyclesCannotLoop) {
    ProcReader r(GetParam());
    auto t = build_subtree(r, 500);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(shape(t.value.root), "500(501)");
}

TEST_P(ProcTree, LimitsTruncate) {
    ProcReader r(GetParam());
    auto few = build_subtree(r, 100, {.max_nodes = 3});
    ASSERT_TRUE(few.ok());
    EXPECT_EQ(shape(few.value.root), "100(200,201)");
    EXPECT_TRUE(few.value.truncated);

    auto shallow = build_subtree(r, 100, {.max_depth = 1});
    ASSERT_TRUE(shallow.ok());
    EXPECT_EQ(shape(shallow.value.root), "100(200,201,202)");
    EXPECT_TRUE(shallow.value.truncated);

    auto whole = build_subtree(r, 1, {.max_depth = 2});
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ(shape(whole.value.root), "1(100(200,201,202),205)");
    EXPECT_TRUE(whole.value.truncated);  // 300 is at depth 3
}

TEST_P(ProcTree, SnapshotOfEverything) {
    ProcReader r(GetParam());
    ProcSnapshot snap = build_all(r);
    EXPECT_EQ(snap.procs.size(), 10u);
    EXPECT_EQ(snap.procs.at(200).comm, "(a) (b)");
    EXPECT_EQ(snap.procs.at(200).ppid, 100);
    EXPECT_EQ(snap.procs.at(201).state, 'Z');
    EXPECT_EQ(snap.children.at(0), (std::vector<pid_t>{1, 2}));

    using V = std::vector<pid_t>;
    EXPECT_EQ(descendants_of(snap, 100), (V{200, 201, 202, 300}));
    EXPECT_EQ(descendants_of(snap, 1), (V{100, 205, 200, 201, 202, 300}));
    EXPECT_EQ(descendants_of(snap, 1, 2), (V{100, 205}));
    EXPECT_EQ(descendants_of(snap, 500), (V{501}));
    EXPECT_TRUE(descendants_of(snap, 300).empty());
    EXPECT_TRUE(descendants_of(snap, 999).empty());

    auto t = build_subtree(snap, r, 100);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(shape(t.value.root), "100(200(300),201,202)");
    EXPECT_EQ(t.value.root.children[0].cmdline, "python3 -m app");
    EXPECT_EQ(build_subtree(snap, r, 999).status, ReadStatus::gone);
}

INSTANTIATE_TEST_SUITE_P(Roots, ProcTree, ::testing::Values(kRoot, kRootNoChildren),
                         [](const auto& p) {
                             return p.index == 0 ? std::string("ChildrenFiles")
                                                 : std::string("StatScan");
                         });

}  // namespace
}  // namespace cow::proc
