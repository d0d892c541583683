// libFuzzer: bytes -> request or error, and every decoded request dispatched through the
// real verb table against a supervisor over a fake Sys (no process is ever started).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/protocol.hpp"
#include "daemon/control/commands.hpp"
#include "daemon/logs/log_writer.hpp"
#include "daemon/logs/output.hpp"
#include "tests/support/fake_sys.hpp"

namespace {

struct World {
    boost::asio::io_context io;
    cow::test::FakeSys sys;
    std::shared_ptr<const cow::config::Config> cfg;
    std::unique_ptr<cow::Supervisor> sup;
    cow::Background bg{io};
    cow::mem::Sampler sampler{"/nonexistent-proc"};
    cow::LogWriter writer{io};
    std::unique_ptr<cow::Output> output;
    std::unique_ptr<cow::CommandContext> ctx;
    World() {
        sys.record = false;
        sys.next_pid = 1'000'000;  // never a real pid of ours
        auto r = cow::config::load_text(
            "pools:\n  web: {command: [x], workers: 3}\n  db: {command: [y]}\n", "f.yaml", "/");
        cfg = r.config;
        sup = std::make_unique<cow::Supervisor>(sys, cfg);
        sup->boot();
        output = std::make_unique<cow::Output>(io, writer, cfg->daemon);
        ctx = std::make_unique<cow::CommandContext>(
            cow::CommandContext{*sup, bg, sampler, *output, writer, [](std::string) {},
                                [](bool, std::shared_ptr<cow::Responder>) {}, sys.now()});
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static World w;
    std::string_view line(reinterpret_cast<const char*>(data), size);
    auto d = cow::proto::decode_request(line);
    if (auto* req = std::get_if<cow::proto::Request>(&d)) {
        if (req->cmd == "shutdown") return 0;  // would end the world for the next inputs
        cow::Peer peer{1, 0, 0, (size & 1) != 0};
        auto resp = std::make_shared<cow::Responder>(std::weak_ptr<cow::Connection>(), req->id);
        cow::dispatch_command(*w.ctx, peer, *req, resp);
        w.sup->settle();
        w.io.poll();
    }
    return 0;
}
