// cowherd's side of the template protocol: what goes out, and what comes back.
#include "daemon/spawn/template_protocol.hpp"

#include <gtest/gtest.h>

using namespace cow;

namespace {

TEST(TemplateProtocol, EncodesRequestsAndParsesReplies) {
    EXPECT_EQ(spawn::encode_fork(5, {"A=1", "bad", "B=x=y", "C=\nD"}), "fork 5\nA=1\nB=x=y");
    auto f = spawn::parse_reply("forked 5 1234\n");
    EXPECT_EQ(f.kind, spawn::TemplateReply::Kind::forked);
    EXPECT_EQ(f.id, 5u);
    EXPECT_EQ(f.pid, 1234);
    auto e = spawn::parse_reply("failed 6 fork: Cannot allocate memory");
    EXPECT_EQ(e.kind, spawn::TemplateReply::Kind::failed);
    EXPECT_EQ(e.why, "fork: Cannot allocate memory");
    EXPECT_EQ(spawn::parse_reply("ready").kind, spawn::TemplateReply::Kind::ready);
    EXPECT_EQ(spawn::parse_reply("forked 5 1").kind, spawn::TemplateReply::Kind::bad);
    EXPECT_EQ(spawn::parse_reply("forked x 12").kind, spawn::TemplateReply::Kind::bad);
    EXPECT_EQ(spawn::parse_reply("hello").kind, spawn::TemplateReply::Kind::bad);
}

}  // namespace
