#include "config/yaml_tree.hpp"

#include <limits>
#include <sstream>
#include <unordered_map>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include "config/config.hpp"

namespace cow::config::detail {
namespace {

// Thrown out of the event handler to stop yaml-cpp once an error makes going on pointless.
struct StopParsing {};

Pos to_pos(const YAML::Mark& m) {
    if (m.is_null() || m.line < 0) return {};
    return {m.line + 1, m.column + 1};
}

std::size_t add_weight(std::size_t a, std::size_t b) {
    return a > std::numeric_limits<std::size_t>::max() - b ? std::numeric_limits<std::size_t>::max()
                                                           : a + b;
}

class TreeBuilder final : public YAML::EventHandler {
  public:
    TreeBuilder(std::string_view text, Diagnostics& diag) : text_(text), diag_(diag) {}

    NodePtr root() const { return root_; }

    void OnDocumentStart(const YAML::Mark& mark) override {
        if (++documents_ > 1) {
            diag_.error(to_pos(mark), path(),
                        "a second YAML document (after \"---\"); a config is a single document");
            throw StopParsing{};
        }
    }
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        auto node = make_node(Node::Kind::null, mark);
        node->text = null_spelling(mark);
        finish(std::move(node), anchor);
    }

    void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        auto it = anchors_.find(anchor);
        if (it == anchors_.end()) {
            // yaml-cpp resolves undefined aliases itself, so this is an alias to a collection
            // that is still open: a cycle.
            diag_.error(to_pos(mark), path(), "alias refers to a collection that contains it");
            throw StopParsing{};
        }
        alias_nodes_ = add_weight(alias_nodes_, it->second->weight);
        if (alias_nodes_ > kMaxAliasExpansion) {
            diag_.error(to_pos(mark), path(),
                        "aliases expand to more than " + std::to_string(kMaxAliasExpansion) +
                            " nodes; refusing what looks like an alias bomb");
            throw StopParsing{};
        }
        attach(it->second);
    }

    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override {
        check_tag(mark, tag);
        // yaml-cpp turns unquoted null words into OnNull itself; this catches any it leaves.
        bool null_word = value == "~" || value == "null" || value == "Null" || value == "NULL";
        auto node =
            make_node(tag == "?" && null_word ? Node::Kind::null : Node::Kind::scalar, mark);
        node->text = value;
        finish(std::move(node), anchor);
    }

    void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override {
        open(Node::Kind::sequence, mark, tag, anchor);
    }
    void OnSequenceEnd() override { close(); }

    void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override {
        open(Node::Kind::mapping, mark, tag, anchor);
    }
    void OnMapEnd() override { close(); }

  private:
    struct Frame {
        std::shared_ptr<Node> node;
        YAML::anchor_t anchor;
        NodePtr pending_key;  // a mapping's key, waiting for its value
    };

    std::string_view text_;
    Diagnostics& diag_;
    NodePtr root_;
    int documents_ = 0;
    std::vector<Frame> stack_;
    std::unordered_map<YAML::anchor_t, NodePtr> anchors_;
    std::size_t alias_nodes_ = 0;
    std::size_t nodes_ = 0;

    // yaml-cpp reports "~", "null" and an empty value alike, so look at the text: an empty
    // value's mark is wherever the next token starts.
    std::string null_spelling(const YAML::Mark& mark) const {
        if (mark.pos < 0 || static_cast<std::size_t>(mark.pos) >= text_.size()) return "";
        std::string_view at = text_.substr(static_cast<std::size_t>(mark.pos));
        for (std::string_view word : {"~", "null", "Null", "NULL"}) {
            if (!at.starts_with(word)) continue;
            char after = at.size() > word.size() ? at[word.size()] : '\n';
            if (std::string_view(" \t\r\n,]}#").find(after) != std::string_view::npos)
                return std::string(word);
        }
        return "";
    }

    // The key path of the node being built, as the schema walk would name it.
    std::string path() const {
        std::string out;
        for (const Frame& f : stack_) {
            if (f.node->kind == Node::Kind::sequence) {
                out += "[" + std::to_string(f.node->items.size()) + "]";
            } else if (f.pending_key && f.pending_key->is_scalar()) {
                out = join_path(out, f.pending_key->text);
            } else {
                break;  // at a key, or under a key that is not a string
            }
        }
        return out;
    }

    void check_tag(const YAML::Mark& mark, const std::string& tag) {
        // "?" plain, "!" quoted, "" untagged collection; "!!str" and friends are harmless.
        if (tag.empty() || tag == "?" || tag == "!" || tag.starts_with("tag:yaml.org,2002:"))
            return;
        diag_.error(to_pos(mark), path(), "unsupported YAML tag " + quote(tag));
    }

    void open(Node::Kind kind, const YAML::Mark& mark, const std::string& tag,
              YAML::anchor_t anchor) {
        if (stack_.size() >= static_cast<std::size_t>(kMaxConfigDepth)) {
            diag_.error(to_pos(mark), path(),
                        "nesting is deeper than " + std::to_string(kMaxConfigDepth) + " levels");
            throw StopParsing{};
        }
        check_tag(mark, tag);
        stack_.push_back(Frame{make_node(kind, mark), anchor, nullptr});
    }

    void close() {
        Frame frame = std::move(stack_.back());
        stack_.pop_back();
        if (frame.pending_key) {
            // yaml-cpp always pairs keys with values; be safe rather than lose the key.
            auto empty = std::make_shared<Node>();
            empty->pos = frame.pending_key->pos;
            frame.node->entries.emplace_back(std::move(frame.pending_key), std::move(empty));
        }
        finish(std::move(frame.node), frame.anchor);
    }

    std::shared_ptr<Node> make_node(Node::Kind kind, const YAML::Mark& mark) {
        if (++nodes_ > kMaxConfigNodes) {
            diag_.error(to_pos(mark), path(),
                        "more than " + std::to_string(kMaxConfigNodes) +
                            " YAML values; no sensible config has that many");
            throw StopParsing{};
        }
        auto node = std::make_shared<Node>();
        node->kind = kind;
        node->pos = to_pos(mark);
        return node;
    }

    void finish(std::shared_ptr<Node> node, YAML::anchor_t anchor) {
        NodePtr done = std::move(node);
        if (anchor != YAML::NullAnchor) anchors_[anchor] = done;
        attach(std::move(done));
    }

    void attach(NodePtr child) {
        if (stack_.empty()) {
            root_ = std::move(child);
            return;
        }
        Frame& parent = stack_.back();
        parent.node->weight = add_weight(parent.node->weight, child->weight);
        if (parent.node->kind == Node::Kind::sequence) {
            parent.node->items.push_back(std::move(child));
        } else if (!parent.pending_key) {
            parent.pending_key = std::move(child);
        } else {
            parent.node->entries.emplace_back(std::move(parent.pending_key), std::move(child));
            parent.pending_key = nullptr;
        }
    }
};

}  // namespace

NodePtr parse_yaml(std::string_view text, Diagnostics& diag) {
    std::istringstream in{std::string(text)};
    TreeBuilder builder(text, diag);
    try {
        YAML::Parser parser(in);
        // A second call only to find out whether there is a second document; the builder
        // rejects it at its first event.
        if (parser.HandleNextDocument(builder)) parser.HandleNextDocument(builder);
    } catch (const StopParsing&) {
        return nullptr;
    } catch (const YAML::DeepRecursion& e) {
        diag.error(to_pos(e.mark), "",
                   "nesting is deeper than " + std::to_string(kMaxConfigDepth) + " levels");
        return nullptr;
    } catch (const YAML::Exception& e) {
        diag.error(to_pos(e.mark), "", "invalid YAML: " + e.msg);
        return nullptr;
    } catch (const std::exception& e) {
        diag.error({}, "", std::string("cannot parse: ") + e.what());
        return nullptr;
    }
    // Tag errors do not stop the walk: the rest of the file can still be checked.
    if (!builder.root()) {
        auto empty = std::make_shared<Node>();
        empty->pos = {1, 1};
        return empty;
    }
    return builder.root();
}

}  // namespace cow::config::detail
