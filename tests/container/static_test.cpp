// The binaries the image ships: no shared-library dependencies, so they run in any image,
// FROM scratch included, whatever its libc.
#include <gtest/gtest.h>

#include "tests/support/run.hpp"

using namespace cow::test;

namespace {

TEST(StaticBinaries, HaveNoSharedLibraryDependencies) {
    for (const char* name : {"cowherd", "cowctl"}) {
        const std::string path = std::string(COWHERD_BIN_DIR) + "/" + name;
        auto r = run({"ldd", path});
        EXPECT_NE((r.out + r.err).find("not a dynamic executable"), std::string::npos)
            << path << ":\n"
            << r.out << r.err;
        auto elf = run({"readelf", "--program-headers", path});
        ASSERT_EQ(elf.code, 0) << elf.err;
        EXPECT_EQ(elf.out.find("INTERP"), std::string::npos) << path << " asks for a loader";
    }
}

}  // namespace
