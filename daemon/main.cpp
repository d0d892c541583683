// cowherd: runs in the foreground (no self-daemonising); see README.md.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "config/config.hpp"
#include "config/summary.hpp"
#include "daemon/daemon.hpp"
#include "daemon/logs/log_setup.hpp"
#include "daemon/logs/log_writer.hpp"

namespace {

std::string find_config(const std::string& given) {
    if (!given.empty()) return given;
    // The install's config directory (it follows the prefix), then /etc/cowherd, where a
    // container image or an admin puts it whatever the prefix was.
    for (const char* p :
         {"./cowherd.yaml", COWHERD_CONFDIR "/cowherd.yaml", "/etc/cowherd/cowherd.yaml"})
        if (std::filesystem::exists(p)) return p;
    return {};
}

// --check cannot know the host the config will run on, so a command it cannot find here is a
// warning (on stderr, naming the path), and the exit code stays 0.
void warn_about_commands(const cow::config::Config& cfg) {
    const char* path = std::getenv("PATH");
    for (const auto& w : cow::config::command_warnings(cfg, path ? path : ""))
        std::fprintf(stderr, "cowherd: warning: %s\n", w.c_str());
}

int cowherd(int argc, char** argv) {
    CLI::App app{"cowherd: a process supervisor for pools of workers"};
    std::string config_path, log_level;
    bool check = false, version = false;
    app.add_option("-c,--config", config_path,
                   "config file (default: ./cowherd.yaml, then " COWHERD_CONFDIR
                   "/cowherd.yaml, then /etc/cowherd/cowherd.yaml)");
    app.add_flag("--check", check, "validate the config, print a summary and exit (0 ok, 2 bad)");
    app.add_option("--log-level", log_level, "override daemon.log_level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    app.add_flag("--version", version, "print the version and exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    if (version) {
        std::printf("cowherd %s\n", COWHERD_VERSION);
        return 0;
    }

    std::string path = find_config(config_path);
    if (path.empty()) {
        std::fprintf(stderr,
                     "cowherd: no config file: pass -c FILE, or create ./cowherd.yaml or "
                     "%s/cowherd.yaml\n",
                     COWHERD_CONFDIR);
        return 2;
    }
    auto loaded = cow::config::load_file(path);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors)
            std::fprintf(stderr, "%s\n", e.to_string().c_str());
        std::fprintf(stderr, "cowherd: %s: %zu error%s; nothing started\n", path.c_str(),
                     loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s");
        return 2;
    }
    // A log_dir that cannot be used is a config error, found now rather than as output lost
    // at a pool's first line (--check creates it too, as startup would).
    if (auto err = cow::prepare_log_dir(*loaded.config); !err.empty()) {
        std::fprintf(stderr, "cowherd: %s: %s; nothing started\n", path.c_str(), err.c_str());
        return 2;
    }
    if (check) {
        std::fputs(cow::config::summarize(*loaded.config).c_str(), stdout);
        warn_about_commands(*loaded.config);
        return 0;
    }
    const auto& d = loaded.config->daemon;
    if (auto err = cow::setup_daemon_log(log_level.empty() ? d.log_level : log_level, d.log_format,
                                         d.log_file);
        !err.empty()) {
        std::fprintf(stderr, "cowherd: %s\n", err.c_str());
        return 1;
    }
    cow::Daemon daemon(loaded.config);
    return daemon.run();
}

}  // namespace

// Whatever escapes would otherwise reach std::terminate: an abort that says nothing of why.
int main(int argc, char** argv) {
    try {
        return cowherd(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cowherd: internal error: %s\n", e.what());
    } catch (...) {
        std::fputs("cowherd: internal error: an exception of unknown type\n", stderr);
    }
    return 1;
}
