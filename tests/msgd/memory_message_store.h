// A MessageStore in memory for the engine's unit tests, with the transaction semantics of the
// SQL store (changes visible to others only after Commit(), gone after Rollback()) and faults
// injected on demand: the next calls fail with a chosen status, as a lost connection or a
// deadlock would. Several MemoryMessageStore objects over one MemoryDatabase are several
// connections; row locks are not modelled (the engine's tests run one pass at a time), the
// SQL store's tests cover SKIP LOCKED on the real databases.

#ifndef XA_TESTS_MSGD_MEMORY_MESSAGE_STORE_H_
#define XA_TESTS_MSGD_MEMORY_MESSAGE_STORE_H_

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemons/msgd/message_store.h"

namespace xa::msg::test {

struct MemoryDatabase {
  std::mutex mu;
  std::map<std::string, Message> messages;
  std::vector<MessageEvent> events;
  std::vector<AuditEntry> audit;
  int schema_version = 0;
  // The next `fail_count` calls of any store fail with `fail_with` (and roll back).
  int fail_count = 0;
  // ... after this many calls succeeded first.
  int skip_calls = 0;
  Status fail_with = Status(Code::kRmFail, "injected: connection lost");
  // Commits that reached the database.
  int commits = 0;
};

class MemoryMessageStore final : public MessageStore {
 public:
  explicit MemoryMessageStore(std::shared_ptr<MemoryDatabase> db) : db_(std::move(db)) {}

  Status Migrate() override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    db_->schema_version = 1;
    return Status::Ok();
  }
  Result<int> SchemaVersion() override {
    std::lock_guard<std::mutex> lock(db_->mu);
    return db_->schema_version;
  }
  Status Insert(const Message& message) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    if (view_->messages.count(message.id)) return Status(Code::kDupId, "duplicate id");
    view_->messages[message.id] = message;
    return Status::Ok();
  }
  Result<std::optional<Message>> LockOne(std::string_view id) override { return Get(id); }
  Result<std::optional<Message>> Get(std::string_view id) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    auto it = view_->messages.find(std::string(id));
    if (it == view_->messages.end()) return std::optional<Message>();
    return std::optional<Message>(it->second);
  }
  Result<std::vector<Message>> LockDue(std::span<const MessageStatus> statuses, int64_t now_ms,
                                       int limit) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    std::vector<Message> due;
    for (const auto& [id, message] : view_->messages) {
      if (message.dead || message.next_attempt_ms > now_ms) continue;
      if (std::find(statuses.begin(), statuses.end(), message.status) == statuses.end()) continue;
      due.push_back(message);
    }
    std::sort(due.begin(), due.end(), [](const Message& a, const Message& b) {
      return a.next_attempt_ms < b.next_attempt_ms;
    });
    if (due.size() > static_cast<size_t>(limit)) due.resize(static_cast<size_t>(limit));
    return due;
  }
  Status Update(const Message& message) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    auto it = view_->messages.find(message.id);
    if (it == view_->messages.end()) return Status(Code::kNoTa, "no such message");
    int64_t created = it->second.created_ms;
    it->second = message;
    it->second.created_ms = created;
    return Status::Ok();
  }
  Result<bool> Delete(std::string_view id) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    bool erased = view_->messages.erase(std::string(id)) > 0;
    std::erase_if(view_->events, [&](const MessageEvent& e) { return e.message_id == id; });
    return erased;
  }
  Result<int> PurgeDone(int64_t before_ms, int limit) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    int purged = 0;
    for (auto it = view_->messages.begin(); it != view_->messages.end() && purged < limit;) {
      const Message& m = it->second;
      if (m.status == MessageStatus::kDone && !m.dead && m.updated_ms < before_ms) {
        std::string id = it->first;
        std::erase_if(view_->events, [&](const MessageEvent& e) { return e.message_id == id; });
        it = view_->messages.erase(it);
        ++purged;
      } else {
        ++it;
      }
    }
    return purged;
  }
  Status AddEvent(const MessageEvent& event) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    view_->events.push_back(event);
    return Status::Ok();
  }
  Status AddAudit(const AuditEntry& entry) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    AuditEntry stored = entry;
    stored.seq = view_->audit.empty() ? 1 : view_->audit.back().seq + 1;
    view_->audit.push_back(stored);
    return Status::Ok();
  }
  Result<std::vector<AuditEntry>> Audit(int64_t before_seq, int limit) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    std::vector<AuditEntry> page;
    for (auto it = view_->audit.rbegin(); it != view_->audit.rend(); ++it) {
      if (it->seq < before_seq && page.size() < static_cast<size_t>(limit)) page.push_back(*it);
    }
    return page;
  }
  Result<std::vector<MessageEvent>> Events(std::string_view id, int limit) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    std::vector<MessageEvent> found;
    for (const MessageEvent& e : view_->events) {
      if (e.message_id == id) found.push_back(e);
    }
    if (found.size() > static_cast<size_t>(limit)) {
      found.erase(found.begin(), found.end() - limit);
    }
    return found;
  }
  Result<std::vector<Message>> List(MessageStatus status, bool dead, int64_t after_updated_ms,
                                    std::string_view after_id, int limit) override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    std::vector<Message> page;
    for (const auto& [id, m] : view_->messages) {
      if (m.status != status || m.dead != dead) continue;
      if (m.updated_ms < after_updated_ms ||
          (m.updated_ms == after_updated_ms && m.id <= after_id)) {
        continue;
      }
      page.push_back(m);
    }
    std::sort(page.begin(), page.end(), [](const Message& a, const Message& b) {
      return std::tie(a.updated_ms, a.id) < std::tie(b.updated_ms, b.id);
    });
    if (page.size() > static_cast<size_t>(limit)) page.resize(static_cast<size_t>(limit));
    return page;
  }
  Result<std::map<MessageStatus, StatusCount>> Counts() override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    Open();
    std::map<MessageStatus, StatusCount> counts;
    for (const auto& [id, m] : view_->messages) {
      StatusCount& count = counts[m.status];
      ++(m.dead ? count.dead : count.live);
      if (!count.oldest_updated_ms || m.updated_ms < *count.oldest_updated_ms) {
        count.oldest_updated_ms = m.updated_ms;
      }
    }
    return counts;
  }
  Status Commit() override {
    std::lock_guard<std::mutex> lock(db_->mu);
    if (Status failed = Injected(); !failed.ok()) return failed;
    if (view_) {
      db_->messages = std::move(view_->messages);
      db_->events = std::move(view_->events);
      db_->audit = std::move(view_->audit);
      ++db_->commits;
      view_.reset();
    }
    return Status::Ok();
  }
  void Rollback() override {
    std::lock_guard<std::mutex> lock(db_->mu);
    view_.reset();
  }

 private:
  struct View {
    std::map<std::string, Message> messages;
    std::vector<MessageEvent> events;
    std::vector<AuditEntry> audit;
  };
  // Starts the transaction: a private copy of the committed state.
  void Open() {
    if (!view_) view_ = View{db_->messages, db_->events, db_->audit};
  }
  Status Injected() {
    if (db_->fail_count == 0) return Status::Ok();
    if (db_->skip_calls > 0) {
      --db_->skip_calls;
      return Status::Ok();
    }
    --db_->fail_count;
    view_.reset();
    return db_->fail_with;
  }

  std::shared_ptr<MemoryDatabase> db_;
  std::optional<View> view_;
};

}  // namespace xa::msg::test

#endif  // XA_TESTS_MSGD_MEMORY_MESSAGE_STORE_H_
