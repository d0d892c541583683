// What a follower (`cowctl logs -f`) is to output capture: one client's stream of items. The
// control server's Responder implements it, so that the logs room never sees a connection and
// never includes the control room above it.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

#include "core/protocol.hpp"

namespace cow {

class ItemStream {
  public:
    virtual ~ItemStream() = default;
    virtual bool done() const = 0;
    virtual bool connected() const = 0;  // false once the client went away
    // Whether `bytes` more fit in the stream's queue of unsent items.
    virtual bool can_stream(std::size_t bytes) const = 0;
    // Runs f once everything queued has been written (never, if the client goes first).
    virtual void when_drained(std::function<void()> f) = 0;
    // An item already serialized, so one line can go to many followers at the cost of one.
    virtual void item_raw(std::string_view item_json) = 0;
    // The stream's final reply.
    virtual void error(proto::ErrorCode code, std::string_view message) = 0;
};

}  // namespace cow
